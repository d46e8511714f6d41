#pragma once
// The program a statically specialized inference binary runs (ctdl_add_inference_binary,
// cmake/ctdl_inference.cmake): one model type, frozen, its weights embedded or mapped
// from a file, a KV-cache decoding session, text in and out through a tokenizer.
//
//   <target> [--weights FILE] [--prompt TEXT | --prompt-tokens 1,2,3] [--max-new-tokens N]
//            [--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT]
//            [--print-tokens] [--stats] [--help]
//
// The prompt comes from --prompt, --prompt-tokens or standard input. --temperature 0 is
// greedy. The continuation is printed as it is made; --print-tokens prints instead the
// prompt's and the generated token ids, comma-separated, on one line. --stats prints one
// line to standard error:
//   prefill: <P> tokens in <ms> ms; decode: <N> tokens in <ms> ms (<tok/s> tokens/s); peak memory: <MiB> MiB; first token: <ms> ms after start
// where "start" is the program's static initialisation, before main (the weights' checks,
// the session and the prefill are in it; exec and the dynamic loader, before it, are not:
// benchmarks/run_ttft.sh times from before exec), and "first token: none" when none was made.
// Generation stops after --max-new-tokens, at the model's context length, or at a --stop text.
// Exit status: 0 on success, 2 for bad usage, 3 for weights or a tokenizer that cannot be
// used, 1 for anything else; each failure with one line naming what is wrong.
//
// The tokenizer: a Hugging Face tokenizer.json (TOKENIZER, embedded or a file: byte-level
// BPE, data/bpe_tokenizer.hpp), else the snapshot's metadata: a "tokenizer.json" entry (the
// text of such a file) or a "tokenizer" entry (a char_tokenizer), as examples/pretrain
// stores them; else none (--prompt-tokens only).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../data/bpe_tokenizer.hpp"
#include "../data/tokenizer.hpp"
#include "../io/snapshot.hpp"
#include "../io/text.hpp"
#include "../model/model.hpp"
#include "decoder.hpp"

namespace ctdl::infer {

/// What a binary was built with (the generated main fills it in).
struct binary_sources {
    const char* name = "infer";
    std::span<const std::byte> weights;    ///< an embedded snapshot image (empty: a file)
    const char* weights_path = "";          ///< the file WEIGHTS named at build time (when not embedded)
    std::span<const std::byte> tokenizer;  ///< an embedded tokenizer.json (empty: none, or a file)
    const char* tokenizer_path = "";        ///< the TOKENIZER file (when not embedded; "" none)
};

namespace cli_detail {

inline constexpr int bad_usage = 2, unusable_input = 3, failure = 1;

/// A failure with its exit status.
struct exit_error {
    int status;
    std::string message;
};

inline std::string usage(const char* name) {
    return std::string("usage: ") + name +
           " [--weights FILE] [--prompt TEXT | --prompt-tokens 1,2,3] [--max-new-tokens N] [--temperature T]"
           " [--top-k K] [--top-p P] [--seed S] [--stop TEXT] [--print-tokens] [--stats] [--help]";
}

struct options {
    std::optional<std::string> weights, prompt, prompt_tokens;
    std::size_t max_new_tokens = 64;
    sampling how{.temperature = 0.8};
    std::uint64_t seed = 0;
    std::vector<std::string> stop;
    bool print_tokens = false, stats = false, help = false;
};

template <class N>
N number(std::string_view flag, std::string_view text) {
    if (const auto v = parse_number<N>(text)) return *v;
    throw exit_error{bad_usage, std::string(flag) + ": '" + ctdl::detail::clip(text) + "' is not a number it takes"};
}

inline options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        const auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) throw exit_error{bad_usage, std::string(a) + " needs a value"};
            return argv[++i];
        };
        if (a == "--help" || a == "-h") o.help = true;
        else if (a == "--weights") o.weights = std::string(value());
        else if (a == "--prompt") o.prompt = std::string(value());
        else if (a == "--prompt-tokens") o.prompt_tokens = std::string(value());
        else if (a == "--max-new-tokens") o.max_new_tokens = number<std::size_t>(a, value());
        else if (a == "--temperature") o.how.temperature = number<double>(a, value());
        else if (a == "--top-k") o.how.top_k = number<std::size_t>(a, value());
        else if (a == "--top-p") o.how.top_p = number<double>(a, value());
        else if (a == "--seed") o.seed = number<std::uint64_t>(a, value());
        else if (a == "--stop") o.stop.emplace_back(value());
        else if (a == "--print-tokens") o.print_tokens = true;
        else if (a == "--stats") o.stats = true;
        else throw exit_error{bad_usage, "unknown argument '" + std::string(a) + "'"};
    }
    if (o.prompt && o.prompt_tokens) throw exit_error{bad_usage, "give --prompt or --prompt-tokens, not both"};
    if (!(o.how.temperature >= 0)) throw exit_error{bad_usage, "--temperature must be >= 0"};
    if (!(o.how.top_p > 0 && o.how.top_p <= 1)) throw exit_error{bad_usage, "--top-p must be in (0, 1]"};
    return o;
}

/// "1,2,3" -> ids (each in [0, vocab)).
inline std::vector<int> token_list(std::string_view s, std::size_t vocab) {
    std::vector<int> ids;
    std::size_t b = 0;
    while (b <= s.size()) {
        const std::size_t e = std::min(s.find(',', b), s.size());
        const auto id = number<long long>("--prompt-tokens", s.substr(b, e - b));
        if (id < 0 || static_cast<unsigned long long>(id) >= vocab)
            throw exit_error{bad_usage, "--prompt-tokens: token " + std::to_string(id) + " is outside the vocabulary [0, " +
                                            std::to_string(vocab) + ")"};
        ids.push_back(static_cast<int>(id));
        b = e + 1;
    }
    return ids;
}

/// Text <-> ids through whichever tokenizer the binary has.
struct text_codec {
    std::function<std::vector<int>(std::string_view)> encode;
    std::function<std::string(std::span<const int>)> decode;
    std::size_t vocab_size = 0;
    explicit operator bool() const { return static_cast<bool>(encode); }
};

template <class Tok>
text_codec codec_of(Tok tok) {
    auto t = std::make_shared<const Tok>(std::move(tok));
    const std::size_t n = t->vocab_size();
    return {[t](std::string_view s) { return t->encode(s); }, [t](std::span<const int> ids) { return t->decode(ids); },
            n};
}

/// When this program's static initialisation ran, before main: the start that the --stats
/// line's "first token" field counts from.
inline const std::chrono::steady_clock::time_point program_start = std::chrono::steady_clock::now();

/// Peak resident memory of this process (VmHWM), in MiB; 0 where /proc is not there.
inline double peak_mib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;
    return 0;
}

inline std::string read_all(std::istream& in) {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace cli_detail

/// Runs the inference binary of architecture Arch (the generated main's whole body).
template <class Arch>
int run_inference_binary(int argc, char** argv, const binary_sources& src) {
    using namespace cli_detail;
    using M = model<frozen<Arch>>;
    using session = decoder<M, 1>;
    try {
        const options o = parse(argc, argv);
        if (o.help) {
            std::printf("%s\n", usage(src.name).c_str());
            return 0;
        }
        // The weights: the embedded image, else --weights or the build's file, mapped.
        std::optional<M> net;
        metadata meta;
        try {
            if (!src.weights.empty() && !o.weights) {
                net.emplace(view_frozen<M>(src.weights, "the embedded weights"));
                meta = ctdl::detail::user_metadata(safetensors::view(src.weights, "the embedded weights").metadata());
            } else {
                const std::string path = o.weights ? *o.weights : std::string(src.weights_path);
                if (path.empty()) throw exit_error{bad_usage, "no weights: give --weights FILE"};
                meta = snapshot_metadata(path);
                net.emplace(map_frozen<M>(path));
            }
        } catch (const ctdl::error& e) {
            throw exit_error{unusable_input, e.what()};
        }
        // The tokenizer.
        text_codec codec;
        try {
            if (!src.tokenizer.empty())
                codec = codec_of(data::bpe_tokenizer::from_hf_json_string(
                    std::string_view(reinterpret_cast<const char*>(src.tokenizer.data()), src.tokenizer.size()),
                    "the embedded tokenizer"));
            else if (*src.tokenizer_path)
                codec = codec_of(data::bpe_tokenizer::from_hf_json(src.tokenizer_path));
            else if (const auto json = meta.find("tokenizer.json"); json != meta.end())
                codec = codec_of(data::bpe_tokenizer::from_hf_json_string(json->second,
                                                                          "the weights' metadata \"tokenizer.json\""));
            else if (const auto it = meta.find("tokenizer"); it != meta.end())
                codec = codec_of(data::char_tokenizer::from_string(it->second));
        } catch (const ctdl::error& e) {
            throw exit_error{unusable_input, e.what()};
        }
        if (codec && codec.vocab_size > session::vocab)
            throw exit_error{unusable_input, "the tokenizer has " + std::to_string(codec.vocab_size) +
                                                 " ids but the model only " + std::to_string(session::vocab)};

        std::vector<int> prompt;
        if (o.prompt_tokens) {
            prompt = token_list(*o.prompt_tokens, session::vocab);
        } else {
            if (!codec) throw exit_error{bad_usage, "this binary has no tokenizer: give --prompt-tokens"};
            const std::string text = o.prompt ? *o.prompt : read_all(std::cin);
            try {
                prompt = codec.encode(text);
            } catch (const ctdl::error& e) {
                throw exit_error{bad_usage, std::string("the prompt: ") + e.what()};
            }
        }
        if (prompt.empty()) throw exit_error{bad_usage, "the prompt is empty"};
        if (prompt.size() > session::max_length)
            throw exit_error{bad_usage, "the prompt has " + std::to_string(prompt.size()) +
                                            " tokens; the model's context is " + std::to_string(session::max_length)};
        if (!o.stop.empty() && !codec) throw exit_error{bad_usage, "--stop needs a tokenizer"};

        session dec(*net);
        generation g{.max_new_tokens = o.max_new_tokens, .how = o.how, .stop_strings = o.stop};
        if (codec) g.how.vocab_size = codec.vocab_size;
        if (!o.stop.empty())
            g.token_text = [&codec](int t, std::string& s) { s += codec.decode(std::span<const int>(&t, 1)); };
        rng r{ctdl::seed{o.seed}};

        // Prefill is timed apart: the first token comes from its logits.
        using clock = std::chrono::steady_clock;
        const auto t0 = clock::now();
        auto t1 = t0;
        std::size_t made = 0;
        std::vector<int> out_ids;
        std::string printed;
        const auto on_token = [&](std::size_t, int t) {
            if (made++ == 0) t1 = clock::now();
            out_ids.push_back(t);
            if (!o.print_tokens && codec) {  // stream the text as it grows
                const std::string text = codec.decode(out_ids);
                if (text.size() > printed.size() && text.compare(0, printed.size(), printed) == 0) {
                    std::fwrite(text.data() + printed.size(), 1, text.size() - printed.size(), stdout);
                    std::fflush(stdout);
                    printed = text;
                }
            }
            return true;
        };
        const auto ids = generate(dec, prompt, g, r, on_token);
        const auto t2 = clock::now();
        if (o.print_tokens || !codec) {
            std::string line;
            for (std::size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
            std::printf("%s\n", line.c_str());
        } else {
            std::printf("\n");
        }
        if (o.stats) {
            const double pre = std::chrono::duration<double, std::milli>(t1 - t0).count();
            const double dec_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
            // The first token comes with the prefill; the decode steps made the others.
            const std::size_t steps = made > 0 ? made - 1 : 0;
            char first[64] = "none";
            if (made > 0)
                std::snprintf(first, sizeof first, "%.2f ms after start",
                              std::chrono::duration<double, std::milli>(t1 - program_start).count());
            std::fprintf(stderr,
                         "prefill: %zu tokens in %.2f ms; decode: %zu tokens in %.2f ms (%.1f tokens/s); peak memory: "
                         "%.1f MiB; first token: %s\n",
                         prompt.size(), pre, steps, dec_ms, dec_ms > 0 ? 1e3 * double(steps) / dec_ms : 0.0,
                         peak_mib(), first);
        }
        return 0;
    } catch (const exit_error& e) {
        std::fprintf(stderr, "%s: %s\n", src.name, e.message.c_str());
        if (e.status == bad_usage) std::fprintf(stderr, "%s\n", usage(src.name).c_str());
        return e.status;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", src.name, e.what());
        return failure;
    }
}

}  // namespace ctdl::infer
