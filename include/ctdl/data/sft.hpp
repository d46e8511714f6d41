#pragma once
// sft_dataset: prompt/response pairs (data/prompt_response.hpp) tokenized for supervised
// fine-tuning of a language model with a context of T tokens, as rows of next-token
// inputs, targets and a loss mask that is 1 on response targets only.
//
//   auto pairs = ctdl::data::read_prompt_responses("train.jsonl");
//   ctdl::data::sft_dataset ds{pairs, tok, {.context = T}};       // last 10% of the pairs: validation
//   ds.require_vocab(Vocab);                                       // every id (pad and end too) below the model's
//   ctdl::tensor<int, ctdl::shape<B, T>> x, y;
//   ctdl::tensor<float, ctdl::shape<B, T>> mask;
//   ds.sample_batch(ctdl::data::split::train, g, x, y, mask);      // B random rows
//   loss::cross_entropy.forward_backward(logits, y, mask, dlogits); // the mean over response targets
//   ctdl::train::run<B, T>(net, opt, ds, g, o);                     // the training loop takes it as it is
//
// One example is the token sequence s = encode(prompt) ++ encode(response) ++ [end], of P
// prompt tokens and L tokens in all, where [end] is the end-of-response token: by default
// the tokenizer's end-of-text token when it has one (end_of_text_id below: a member
// end_of_text_id(), or the token "<|endoftext|>" of a tokenizer with token_to_id, as
// GPT-2's), nothing otherwise; sft_options::end_token names another, and
// append_end_token = false appends none. Prompt and response are encoded separately, so
// the prompt's last token never merges with the response's first.
//
// A row is a stream of T + 1 tokens r: input x[t] = r[t], target y[t] = r[t + 1], mask[t]
// = 1 exactly where r[t + 1] is a response token (or the end token) of the example it
// belongs to, 0 on every prompt and padding position. So the loss is counted on the
// response only, and the first prompt token and the prompt's continuation are never
// learned; the prediction of the first response token from the prompt's last is.
//
// Fitting into the context: an example needs L <= T + 1. A longer one is truncated to its
// first T + 1 tokens (the response's tail and the end token are cut; truncated() counts
// them), or refused with too_long::refuse. A prompt of more than T tokens leaves no
// response target in the row and is always refused, as is an empty prompt (nothing to
// predict the first response token from) and an example with no response token at all
// (an empty response and no end token). Refusals are ctdl::error naming the example's
// line (prompt_response::line) and the token counts, before the dataset exists.
//
// Layouts:
// - padded (default): one example per row, from r[0]; the rest of the row is pad_token
//   with mask 0. Causal attention keeps each real position blind to the padding after it.
// - packed: examples in order, each whole (never split across rows), appended to the
//   current row while it fits in its T + 1 tokens, else starting the next row; what a
//   row has left when the next example does not fit is padding. The target after an
//   example's last token is the next one's first prompt token, masked out. No per-example reset:
//   with causal attention an example attends to the examples before it in its row, and
//   its positions count from its offset in the row, not from 0. Fewer rows, fewer padded
//   positions, and examples that are not independent of each other.
//
// Splits: the last round(n · validation_fraction) pairs are the validation split, the rest
// the training split (or the two lists of the two-list constructor); each split is laid
// out on its own, so no row holds both. sample_batch draws row b as next_below(rows) from
// the rng, rows in order, like text_dataset: a batch is a pure function of the rng state
// and the dataset, so a checkpoint's rng state resumes the data stream exactly.
// fill_rows copies rows in order for evaluation (every row once).
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/tensor.hpp"
#include "prompt_response.hpp"
#include "text_dataset.hpp"

namespace ctdl::data {

/// A tokenizer sft_dataset can use: encode(text) gives the token ids (char_tokenizer,
/// byte_tokenizer, bpe_tokenizer).
template <class Tok>
concept text_encoder = requires(const Tok& t, std::string_view s) {
    { t.encode(s) } -> std::convertible_to<std::vector<int>>;
};

/// The tokenizer's end-of-text token: its end_of_text_id() when it has that member, else
/// the id of "<|endoftext|>" when it has token_to_id (bpe_tokenizer with GPT-2's
/// vocabulary, or one trained with that special token), else none (char and byte
/// tokenizers).
template <class Tok>
std::optional<int> end_of_text_id(const Tok& tok) {
    if constexpr (requires { { tok.end_of_text_id() } -> std::convertible_to<std::optional<int>>; })
        return tok.end_of_text_id();
    else if constexpr (requires { { tok.token_to_id(std::string_view{}) } -> std::convertible_to<std::optional<int>>; })
        return tok.token_to_id("<|endoftext|>");
    else
        return std::nullopt;
}

enum class sft_layout { padded, packed };

/// What sft_dataset does with an example longer than the context (T + 1 tokens).
enum class too_long { truncate_response, refuse };

struct sft_options {
    std::size_t context = 0;            ///< T, the model's context: required, >= 1
    double validation_fraction = 0.1;   ///< of the pairs, for the one-list constructor
    sft_layout layout = sft_layout::padded;
    too_long overflow = too_long::truncate_response;
    bool append_end_token = true;
    std::optional<int> end_token{};     ///< default: end_of_text_id(tokenizer), if any
    int pad_token = 0;                  ///< the input (and target) id of padding positions
};

class sft_dataset {
public:
    /// The pairs, split into training and validation by options.validation_fraction.
    /// ctdl::error if the fraction is not in (0, 1) or leaves a split empty, or for an
    /// example refused by the rules of the header comment.
    template <text_encoder Tok>
    sft_dataset(std::span<const prompt_response> pairs, const Tok& tok, const sft_options& o) {
        check_options(o);
        if (!(o.validation_fraction > 0.0 && o.validation_fraction < 1.0))
            throw error("sft_dataset: validation_fraction must be in (0, 1), got " +
                        std::to_string(o.validation_fraction));
        const std::size_t n = pairs.size();
        const auto n_val = static_cast<std::size_t>(std::llround(static_cast<double>(n) * o.validation_fraction));
        if (n_val == 0 || n_val >= n)
            throw error("sft_dataset: a validation fraction of " + std::to_string(o.validation_fraction) + " of " +
                        std::to_string(n) + " pairs leaves " + std::to_string(n - std::min(n, n_val)) +
                        " training and " + std::to_string(n_val) + " validation pairs; both splits need at least one");
        build(pairs.first(n - n_val), pairs.subspan(n - n_val), tok, o);
    }
    template <text_encoder Tok>
    sft_dataset(const std::vector<prompt_response>& pairs, const Tok& tok, const sft_options& o)
        : sft_dataset(std::span<const prompt_response>(pairs), tok, o) {}

    /// Training and validation pairs given apart (e.g. two files); each needs a pair.
    template <text_encoder Tok>
    sft_dataset(std::span<const prompt_response> train, std::span<const prompt_response> validation, const Tok& tok,
                const sft_options& o) {
        check_options(o);
        if (train.empty() || validation.empty())
            throw error(std::string("sft_dataset: the ") + (train.empty() ? "training" : "validation") +
                        " split has no pair; both splits need at least one");
        build(train, validation, tok, o);
    }

    /// T, the context the rows were laid out for.
    std::size_t context() const noexcept { return t_; }
    sft_layout layout() const noexcept { return layout_; }
    /// The end-of-response token appended to every example, if any.
    std::optional<int> end_token() const noexcept { return end_; }
    int pad_token() const noexcept { return pad_; }

    /// Rows of split s.
    std::size_t rows(split s) const noexcept { return part(s).rows; }
    /// Examples (pairs) of split s.
    std::size_t examples(split s) const noexcept { return part(s).examples; }
    /// Positions with mask 1 in split s: the response targets that count.
    std::size_t response_tokens(split s) const noexcept { return part(s).response_tokens; }
    /// Examples of split s cut to fit the context (too_long::truncate_response).
    std::size_t truncated(split s) const noexcept { return part(s).truncated; }
    /// One more than the largest token id in the rows (padding included).
    std::size_t vocab_bound() const noexcept { return static_cast<std::size_t>(max_token_) + 1; }

    /// Throws ctdl::error unless every token id (padding included) is below vocab_size.
    void require_vocab(std::size_t vocab_size) const {
        if (vocab_bound() <= vocab_size) return;
        throw error("sft_dataset: token id " + std::to_string(max_token_) + " is outside a vocabulary of " +
                    std::to_string(vocab_size) + (max_token_ == pad_ ? " (it is pad_token)" : ""));
    }

    /// Throws ctdl::error unless the rows were laid out for T (the training loop's check;
    /// every split holds a row by construction).
    void require_window(split s, std::size_t T) const {
        if (T != t_)
            throw error("sft_dataset: the " + std::string(split_name(s)) + " rows were laid out for a context of " +
                        std::to_string(t_) + " tokens, not " + std::to_string(T));
    }

    /// Row i of split s: T inputs, T targets, T mask values.
    struct row_view {
        std::span<const int> input, target;
        std::span<const float> mask;
    };
    row_view row(split s, std::size_t i) const {
        const layout_part& p = part(s);
        if (i >= p.rows)
            throw error("sft_dataset: there is no row " + std::to_string(i) + " in the " + split_name(s) +
                        " split, which has " + std::to_string(p.rows) + " rows");
        const int* r = p.tokens.data() + i * (t_ + 1);
        return {{r, t_}, {r + 1, t_}, {p.mask.data() + i * t_, t_}};
    }

    /// Fills B rows of x, y and mask (B·T each, row-major) with random rows of split s
    /// (drawn from g in row order, see the header comment).
    void sample_batch(split s, rng& g, std::size_t B, std::size_t T, int* x, int* y, float* mask) const {
        require_window(s, T);
        const layout_part& p = part(s);
        for (std::size_t b = 0; b < B; ++b) copy_row(p, static_cast<std::size_t>(g.next_below(p.rows)), b, x, y, mask);
    }
    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    void sample_batch(split s, rng& g, tensor<int, shape<B, T>, Exec>& x, tensor<int, shape<B, T>, Exec>& y,
                      tensor<float, shape<B, T>, Exec>& mask) const {
        sample_batch(s, g, B, T, x.data(), y.data(), mask.data());
    }

    /// Copies rows first, first + 1, ... of split s into x, y and mask, as many as fit (B)
    /// or remain; returns that count. Rows past it are padding with mask 0.
    std::size_t fill_rows(split s, std::size_t first, std::size_t B, std::size_t T, int* x, int* y, float* mask) const {
        require_window(s, T);
        const layout_part& p = part(s);
        const std::size_t count = first < p.rows ? std::min(B, p.rows - first) : 0;
        for (std::size_t b = 0; b < count; ++b) copy_row(p, first + b, b, x, y, mask);
        std::fill(x + count * T, x + B * T, pad_);
        std::fill(y + count * T, y + B * T, pad_);
        std::fill(mask + count * T, mask + B * T, 0.0f);
        return count;
    }
    template <std::size_t B, std::size_t T, class Exec>
        requires Exec::host_accessible
    std::size_t fill_rows(split s, std::size_t first, tensor<int, shape<B, T>, Exec>& x,
                          tensor<int, shape<B, T>, Exec>& y, tensor<float, shape<B, T>, Exec>& mask) const {
        return fill_rows(s, first, B, T, x.data(), y.data(), mask.data());
    }

private:
    struct layout_part {
        std::vector<int> tokens;  // rows · (T + 1): each row's stream
        std::vector<float> mask;  // rows · T
        std::size_t rows = 0, examples = 0, response_tokens = 0, truncated = 0;
    };

    static void check_options(const sft_options& o) {
        if (o.context == 0) throw error("sft_dataset: sft_options::context (the model's T) must be at least 1");
        if (o.pad_token < 0) throw error("sft_dataset: pad_token is negative (" + std::to_string(o.pad_token) + ")");
        if (o.end_token && *o.end_token < 0)
            throw error("sft_dataset: end_token is negative (" + std::to_string(*o.end_token) + ")");
    }

    template <class Tok>
    void build(std::span<const prompt_response> train, std::span<const prompt_response> validation, const Tok& tok,
               const sft_options& o) {
        t_ = o.context;
        layout_ = o.layout;
        pad_ = o.pad_token;
        end_ = o.append_end_token ? (o.end_token ? o.end_token : end_of_text_id(tok)) : std::nullopt;
        max_token_ = pad_;
        if (end_) max_token_ = std::max(max_token_, *end_);
        // Both splits are made before anything is kept: a refusal leaves nothing half built.
        layout_part tr = lay_out(train, tok, o), va = lay_out(validation, tok, o);
        train_ = std::move(tr);
        validation_ = std::move(va);
    }

    /// One example's stream and its prompt length, refused or cut by the header's rules.
    template <class Tok>
    std::pair<std::vector<int>, std::size_t> encode_example(const prompt_response& pr, const Tok& tok,
                                                            const sft_options& o, bool& truncated) {
        const auto refuse = [&](const std::string& what) {
            throw error("sft_dataset: the example" +
                        (pr.line ? " of line " + std::to_string(pr.line) : std::string()) + " " + what);
        };
        std::vector<int> s = tok.encode(pr.prompt);
        const std::size_t P = s.size();
        if (P == 0) refuse("has an empty prompt: nothing to predict the first response token from");
        if (P > t_)
            refuse("has a prompt of " + std::to_string(P) + " tokens, more than the context of " + std::to_string(t_) +
                   ": no response token would be a target");
        const std::vector<int> r = tok.encode(pr.response);
        s.insert(s.end(), r.begin(), r.end());
        if (end_) s.push_back(*end_);
        if (s.size() == P) refuse("has no response token (an empty response and no end token): nothing to learn");
        truncated = s.size() > t_ + 1;
        if (truncated) {
            if (o.overflow == too_long::refuse)
                refuse("has " + std::to_string(s.size()) + " tokens (prompt " + std::to_string(P) +
                       "), more than the " + std::to_string(t_ + 1) + " a context of " + std::to_string(t_) +
                       " holds (too_long::refuse)");
            s.resize(t_ + 1);
        }
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] < 0) refuse("encodes to a negative token id (" + std::to_string(s[i]) + ")");
            max_token_ = std::max(max_token_, s[i]);
        }
        return {std::move(s), P};
    }

    template <class Tok>
    layout_part lay_out(std::span<const prompt_response> pairs, const Tok& tok, const sft_options& o) {
        layout_part p;
        p.examples = pairs.size();
        std::size_t used = t_ + 1;  // tokens of the current row's stream; full: start a row
        const auto new_row = [&] {
            p.tokens.resize(p.tokens.size() + t_ + 1, pad_);
            p.mask.resize(p.mask.size() + t_, 0.0f);
            ++p.rows;
            used = 0;
        };
        for (const prompt_response& pr : pairs) {
            bool cut = false;
            const auto [s, P] = encode_example(pr, tok, o, cut);
            p.truncated += cut ? 1 : 0;
            if (o.layout == sft_layout::padded || used + s.size() > t_ + 1) new_row();
            int* stream = p.tokens.data() + (p.rows - 1) * (t_ + 1) + used;
            float* mask = p.mask.data() + (p.rows - 1) * t_;
            std::copy(s.begin(), s.end(), stream);
            // target position t predicts stream[t + 1]: a response token when t + 1 >= used + P
            for (std::size_t k = P; k < s.size(); ++k) mask[used + k - 1] = 1.0f;
            p.response_tokens += s.size() - P;
            used += s.size();
        }
        return p;
    }

    void copy_row(const layout_part& p, std::size_t i, std::size_t b, int* x, int* y, float* mask) const {
        const int* r = p.tokens.data() + i * (t_ + 1);
        std::copy_n(r, t_, x + b * t_);
        std::copy_n(r + 1, t_, y + b * t_);
        std::copy_n(p.mask.data() + i * t_, t_, mask + b * t_);
    }

    const layout_part& part(split s) const noexcept { return s == split::train ? train_ : validation_; }

    std::size_t t_ = 0;
    sft_layout layout_ = sft_layout::padded;
    std::optional<int> end_;
    int pad_ = 0;
    int max_token_ = 0;
    layout_part train_, validation_;
};

}  // namespace ctdl::data
