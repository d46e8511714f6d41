#pragma once
// A decoding session over a model: its layers in a decoding context (graph/decode.hpp), with
// a KV cache sized from the type, for Batch independent sequences of up to MaxT tokens.
//
//   ctdl::infer::decoder<decltype(net), 1> dec{net};      // MaxT: the model's context length
//   auto logits = dec.prefill(0, prompt);                   // the whole prompt in one pass
//   int next = ...;                                         // pick from logits (infer::sampler)
//   logits = dec.append(0, next);                           // one token, reading the cache
//
// A sequence's length is a run-time value up to MaxT: a prompt is not padded, and every
// prompt length runs through the same type. Several sequences advance in one pass with
// step(tokens) (one token per sequence; a negative token leaves that sequence as it is).
// The model's parameters are read in place (the session borrows them: the model must
// outlive it, and changes to its parameters are seen by the next call). Everything the
// session needs is allocated when it is made; a step allocates nothing.
//
// Weights in bf16: infer::bf16_decoder<Model, Batch, MaxT, PassRows> (decoder<..., ctdl::bf16>)
// is the same session with the weights of its linear layers and tied head packed in bf16
// (each rounded to nearest, ties to even, when the session packs them) and widened to float
// in the kernel: the activations, the KV cache and every sum stay float, and the logits are
// those of the float session over a model whose packed weights were rounded to bf16. Half
// the weight bytes per token; the model keeps its float parameters (the embeddings, norms
// and biases are read from them).
//
//   ctdl::infer::bf16_decoder<decltype(net)> dec{net};
//
// Each call returns the logits after the last token it appended (for a language model's
// head only that row is computed): a host span of the vocabulary size, valid until the next
// call on this session.
//
// Generation on a session (KV cache), for one prompt or a batch of them:
//   ctdl::infer::generation opt{.max_new_tokens = 100, .how = {.temperature = 0.7, .top_p = 0.9},
//                               .stop_tokens = {eos}};
//   auto ids = ctdl::infer::generate(dec, prompt, opt, g);              // prompt + new tokens
//   auto all = ctdl::infer::generate(dec, prompts, opt, g, on_token);   // batched: one pass per step
// on_token(b, token) is called as each token is made (streaming); returning false stops
// sequence b. A stop token is kept as the last token; a stop string (matched on the text
// opt.token_text gives) ends the sequence with the token that completed it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/bf16.hpp"
#include "../core/error.hpp"
#include "../core/shape.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../graph/context.hpp"
#include "../graph/decode.hpp"
#include "../graph/node_of.hpp"
#include "../graph/packs.hpp"
#include "../nn/layer.hpp"
#include "../ops/linear/kernels.hpp"
#include "sampling.hpp"

namespace ctdl::infer {

namespace detail {

template <class A>
constexpr std::size_t context_length_of() {
    if constexpr (requires { A::context_length; }) return A::context_length;
    else if constexpr (requires { typename A::inner; }) return context_length_of<typename A::inner>();
    else return 0;
}

}  // namespace detail

/// The longest sequence architecture A takes (models::gpt: its Ctx), 0 when it does not say.
template <class A>
inline constexpr std::size_t context_length = detail::context_length_of<A>();

/// Named after the mistake.
template <class Arch, std::size_t MaxT>
struct decoder_needs_a_context_length {
    static constexpr bool value = MaxT > 0;
    static_assert(value, "infer::decoder<Model, Batch, MaxT>: the model's architecture states no context_length; "
                         "give MaxT, the longest sequence the session holds");
};
template <class Root>
struct decoder_layers_must_decode {
    static constexpr bool value = Root::decodes_;
    static_assert(value, "infer::decoder: every layer of the model must have decode(params, in, out, rows) "
                         "(graph/decode.hpp); one of them has not");
};

template <class T, class Weights>
struct decoder_weights_must_be_the_models_type_or_bf16 {
    static constexpr bool value = std::is_same_v<Weights, T> || (std::is_same_v<T, float> && std::is_same_v<Weights, bf16>);
    static_assert(value, "infer::decoder<Model, Batch, MaxT, PassRows, Weights>: Weights must be the model's "
                         "value_type, or ctdl::bf16 for a float model");
};
template <class Exec, class Weights>
struct decoder_policy_must_pack_weights_in {
    static constexpr bool value = ops::linear_packs<Exec, float, nn::weight_layout::out_in, Weights>(1) &&
                                  ops::linear_packs<Exec, float, nn::weight_layout::in_out, Weights>(1);
    static_assert(value, "infer::decoder: the model's execution policy keeps no weights packed in this type "
                         "(bf16 weights: the cpu policy)");
};

/// Rows a decoding pass takes by default: a prompt longer than this is prefilled in passes of
/// this many tokens (each reading the cache the ones before it wrote), which bounds the row
/// buffers (GPT-2 small: ~1 GB for a whole 1024-token pass, ~120 MB for 128 rows).
inline constexpr std::size_t default_pass_rows = 128;

template <class Model, std::size_t Batch = 1, std::size_t MaxT = context_length<typename Model::arch_type>,
          std::size_t PassRows = (Batch > default_pass_rows ? Batch : default_pass_rows),
          class Weights = typename Model::value_type>
class decoder {
public:
    using model_type = Model;
    using arch_type = typename Model::arch_type;
    using T = typename Model::value_type;
    using Exec = typename Model::exec_type;
    /// The elements the session keeps its packed weights in: T, or bf16.
    using weight_type = Weights;
    static constexpr std::size_t batch = Batch, max_length = MaxT;
    /// Rows one pass takes (a step has one per sequence, a prefill up to this many).
    static constexpr std::size_t pass_rows = PassRows < Batch * MaxT ? PassRows : Batch * MaxT;
    static_assert(Batch > 0, "infer::decoder: Batch must be at least 1");
    static_assert(PassRows >= Batch, "infer::decoder: PassRows must hold one row per sequence (>= Batch)");

private:
    static_assert(decoder_needs_a_context_length<arch_type, MaxT>::value);
    using in_shape = shape<Batch, (MaxT > 0 ? MaxT : 1)>;
    // (The policy is asked only about a weight type it may be asked for.)
    static constexpr bool weights_ok_ = decoder_weights_must_be_the_models_type_or_bf16<T, Weights>::value;
    static_assert(std::conditional_t<std::is_same_v<Weights, T> || !weights_ok_, std::true_type,
                                     decoder_policy_must_pack_weights_in<Exec, Weights>>::value);
    using context =
        graph::context<in_shape, T, Exec, 0, 0, true, false, int, (pass_rows > 0 ? pass_rows : 1), Weights>;
    using root_type = graph::node_of<arch_type, context>;
    using out_shape = output_shape<arch_type, in_shape>;

    struct probe {
        static constexpr bool decodes_ = decoding_node<root_type, context>;
    };
    static_assert(decoder_layers_must_decode<probe>::value);

public:
    static constexpr std::size_t vocab = last_extent<out_shape>;

    explicit decoder(const Model& net)
        : net_(&net),
          ids_(pass_rows),
          seq_(pass_rows),
          pos_(pass_rows),
          keep_(Batch),
          out_(Batch * vocab),
          host_ids_(pass_rows),
          host_seq_(pass_rows),
          host_pos_(pass_rows),
          host_keep_(Batch),
          logits_(Batch * vocab),
          length_(Batch, 0) {}

    decoder(const decoder&) = delete;
    decoder& operator=(const decoder&) = delete;

    /// Tokens held for sequence b.
    std::size_t length(std::size_t b) const { return length_.at(b); }
    /// Forgets sequence b (its cache is overwritten from position 0 on).
    void reset(std::size_t b) { length_.at(b) = 0; }
    void reset() { std::fill(length_.begin(), length_.end(), std::size_t{0}); }

    /// Appends tokens (at least one) to sequence b in one pass; the logits after the last.
    std::span<const T> prefill(std::size_t b, std::span<const int> tokens) {
        check_sequence(b, "prefill");
        if (tokens.empty()) throw error("infer::decoder::prefill: no tokens; give at least one");
        if (tokens.size() > MaxT - length_[b])
            throw error("infer::decoder::prefill: sequence " + std::to_string(b) + " holds " +
                        std::to_string(length_[b]) + " tokens; " + std::to_string(tokens.size()) +
                        " more exceed the session's maximum of " + std::to_string(MaxT));
        // Passes of up to pass_rows tokens; the head runs on each pass's last row (only the
        // last one's logits are kept).
        for (std::size_t at = 0; at < tokens.size(); at += pass_rows) {
            const std::size_t n = std::min(pass_rows, tokens.size() - at);
            for (std::size_t r = 0; r < n; ++r) {
                host_ids_[r] = tokens[at + r];
                host_seq_[r] = static_cast<std::int32_t>(b);
                host_pos_[r] = static_cast<std::int32_t>(length_[b] + r);
            }
            host_keep_[0] = static_cast<std::int32_t>(n - 1);
            run(n, 1);
            length_[b] += n;
        }
        copy_logits(0, b);
        return logits(b);
    }
    std::span<const T> prefill(std::size_t b, const std::vector<int>& tokens) {
        return prefill(b, std::span<const int>(tokens));
    }

    /// Appends one token to sequence b; the logits after it.
    std::span<const T> append(std::size_t b, int token) {
        return prefill(b, std::span<const int>(&token, 1));
    }

    /// One token for each sequence in one pass: tokens[b] for sequence b, or a negative
    /// value to leave sequence b as it is. logits(b) then holds each advanced sequence's.
    void step(std::span<const int> tokens) {
        if (tokens.size() != Batch)
            throw error("infer::decoder::step: " + std::to_string(tokens.size()) + " tokens for a batch of " +
                        std::to_string(Batch) + " (give one per sequence, negative to skip one)");
        std::size_t n = 0;
        for (std::size_t b = 0; b < Batch; ++b) {
            if (tokens[b] < 0) continue;
            if (length_[b] >= MaxT)
                throw error("infer::decoder::step: sequence " + std::to_string(b) + " is full (" +
                            std::to_string(MaxT) + " tokens)");
            host_ids_[n] = tokens[b];
            host_seq_[n] = static_cast<std::int32_t>(b);
            host_pos_[n] = static_cast<std::int32_t>(length_[b]);
            host_keep_[n] = static_cast<std::int32_t>(n);
            ++n;
        }
        if (n == 0) return;
        run(n, n);
        for (std::size_t r = 0; r < n; ++r) {
            const auto b = static_cast<std::size_t>(host_seq_[r]);
            ++length_[b];
            copy_logits(r, b);
        }
    }

    /// Bytes of the session's packed weights (made on the first call; 0 before it, and for a
    /// float session on a policy or ISA that packs none).
    std::size_t packed_bytes() const { return packs_.size() * sizeof(Weights); }

    /// The logits after the last token appended to sequence b (host memory).
    std::span<const T> logits(std::size_t b) const {
        return std::span<const T>(logits_.data() + b * vocab, vocab);
    }

private:
    void check_sequence(std::size_t b, const char* who) const {
        if (b >= Batch)
            throw error(std::string("infer::decoder::") + who + ": sequence " + std::to_string(b) +
                        " is outside the batch of " + std::to_string(Batch));
    }

    /// Runs rows token rows (host_* filled), keeping kept rows (host_keep_) for the head.
    void run(std::size_t rows, std::size_t kept) {
        Exec::copy_from_host(host_ids_.data(), ids_.data(), rows);
        Exec::copy_from_host(host_seq_.data(), seq_.data(), rows);
        Exec::copy_from_host(host_pos_.data(), pos_.data(), rows);
        Exec::copy_from_host(host_keep_.data(), keep_.data(), kept);
        const graph::decode_rows d{rows, seq_.data(), pos_.data()};
        // The kept rows' seq and pos are not read by a row-wise head.
        const graph::row_selection keep{keep_.data(), graph::decode_rows{kept, nullptr, nullptr}};
        const T* params = net_->parameters();
        if (packed_version_ != net_->parameter_version()) {  // (re)pack what the layers keep packed
            graph::pack_nodes(root_, params, packs_);
            packed_version_ = net_->parameter_version();
        }
        if constexpr (requires { root_.decode(params, ids_.data(), out_.data(), d, &keep); })
            root_.decode(params, ids_.data(), out_.data(), d, &keep);
        else
            static_assert(requires { root_.decode(params, ids_.data(), out_.data(), d, &keep); },
                          "infer::decoder: the model must be a sequential graph ending in a row-wise head");
    }
    /// Row r of the output into sequence b's logits.
    void copy_logits(std::size_t r, std::size_t b) {
        Exec::copy_to_host(out_.data() + r * vocab, logits_.data() + b * vocab, vocab);
    }

    const Model* net_;
    root_type root_;
    typename Exec::template buffer<int> ids_;
    typename Exec::template buffer<std::int32_t> seq_, pos_, keep_;
    typename Exec::template buffer<T> out_;
    std::vector<int> host_ids_;
    std::vector<std::int32_t> host_seq_, host_pos_, host_keep_;
    std::vector<T> logits_;
    std::vector<std::size_t> length_;
    page_buffer<Weights> packs_;
    std::uint64_t packed_version_ = 0;
};

/// A decoding session whose linear layers and tied head read their weights in bf16 (see above).
template <class Model, std::size_t Batch = 1, std::size_t MaxT = context_length<typename Model::arch_type>,
          std::size_t PassRows = (Batch > default_pass_rows ? Batch : default_pass_rows)>
using bf16_decoder = decoder<Model, Batch, MaxT, PassRows, bf16>;

/// What generate does after the prompt.
struct generation {
    std::size_t max_new_tokens = 64;
    sampling how{.temperature = 0.0};
    std::vector<int> stop_tokens{};          ///< ends a sequence (kept as its last token)
    std::vector<std::string> stop_strings{};  ///< ends a sequence once its new text ends with one
    /// Appends the text of a token to a string (a tokenizer's): needed for stop_strings.
    std::function<void(int, std::string&)> token_text{};
};

namespace detail {

/// Per sequence: whether it still runs, and the tail of its new text (for stop strings).
struct stop_state {
    bool done = false;
    std::string tail;
};

inline std::size_t longest(const std::vector<std::string>& v) {
    std::size_t n = 0;
    for (const auto& s : v) n = std::max(n, s.size());
    return n;
}

/// Whether token t (just made) ends its sequence; keeps st.tail to the bytes a stop string
/// could still need.
inline bool ends(const generation& opt, stop_state& st, int t, std::size_t keep) {
    for (const int s : opt.stop_tokens)
        if (s == t) return true;
    if (opt.stop_strings.empty()) return false;
    opt.token_text(t, st.tail);
    for (const auto& s : opt.stop_strings)
        if (!s.empty() && st.tail.size() >= s.size() &&
            std::string_view(st.tail).substr(st.tail.size() - s.size()) == s)
            return true;
    if (st.tail.size() > keep) st.tail.erase(0, st.tail.size() - keep);
    return false;
}

struct no_token_callback {
    constexpr bool operator()(std::size_t, int) const { return true; }
};

}  // namespace detail

/// Generates from prompts[b] (one per sequence of the session, at most Batch, each at least
/// one token) in one pass per step; returns each prompt followed by its new tokens. The
/// session is reset first.
template <class Model, std::size_t Batch, std::size_t MaxT, std::size_t PassRows, class W,
          class OnToken = detail::no_token_callback>
std::vector<std::vector<int>> generate(decoder<Model, Batch, MaxT, PassRows, W>& dec,
                                       std::span<const std::vector<int>> prompts, const generation& opt, rng& g,
                                       OnToken&& on_token = {}) {
    using T = typename Model::value_type;
    const std::size_t n = prompts.size();
    if (n == 0 || n > Batch)
        throw error("infer::generate: " + std::to_string(n) + " prompts for a session of batch " +
                    std::to_string(Batch));
    if (!opt.stop_strings.empty() && !opt.token_text)
        throw error("infer::generate: stop_strings need generation::token_text (a tokenizer's text of a token)");
    sampler pick(decoder<Model, Batch, MaxT, PassRows, W>::vocab);
    pick.check(opt.how);
    for (std::size_t b = 0; b < n; ++b) {
        if (prompts[b].empty()) throw error("infer::generate: prompt " + std::to_string(b) + " is empty");
        if (prompts[b].size() > MaxT)
            throw error("infer::generate: prompt " + std::to_string(b) + " has " + std::to_string(prompts[b].size()) +
                        " tokens, more than the session's maximum of " + std::to_string(MaxT));
    }
    // Everything a step needs is made here: no allocation per token after this.
    const std::size_t keep = detail::longest(opt.stop_strings) + 64;
    std::vector<std::vector<int>> out(n);
    std::vector<detail::stop_state> st(n);
    std::vector<int> next(Batch, -1);
    for (std::size_t b = 0; b < n; ++b) {
        out[b].reserve(prompts[b].size() + opt.max_new_tokens);
        out[b] = prompts[b];
        st[b].tail.reserve(2 * keep + 64);
    }
    dec.reset();
    if (opt.max_new_tokens == 0) return out;
    const auto take = [&](std::size_t b, std::span<const T> logits) {
        const int t = pick(logits, opt.how, g);
        out[b].push_back(t);
        const bool more = on_token(b, t);
        st[b].done = !more || detail::ends(opt, st[b], t, keep) ||
                     out[b].size() - prompts[b].size() >= opt.max_new_tokens || dec.length(b) >= MaxT;
        next[b] = st[b].done ? -1 : t;
    };
    for (std::size_t b = 0; b < n; ++b) take(b, dec.prefill(b, std::span<const int>(prompts[b])));
    for (;;) {
        bool any = false;
        for (std::size_t b = 0; b < n; ++b) any = any || !st[b].done;
        if (!any) break;
        dec.step(std::span<const int>(next));
        for (std::size_t b = 0; b < n; ++b)
            if (!st[b].done) take(b, dec.logits(b));
    }
    return out;
}

/// The same for one prompt (sequence 0 of the session).
template <class Model, std::size_t Batch, std::size_t MaxT, std::size_t PassRows, class W,
          class OnToken = detail::no_token_callback>
std::vector<int> generate(decoder<Model, Batch, MaxT, PassRows, W>& dec, const std::vector<int>& prompt,
                          const generation& opt, rng& g, OnToken&& on_token = {}) {
    auto all = generate(dec, std::span<const std::vector<int>>(&prompt, 1), opt, g,
                        std::forward<OnToken>(on_token));
    return std::move(all.front());
}

}  // namespace ctdl::infer
