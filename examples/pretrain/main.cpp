// Pretraining a small GPT by next-token prediction, on this machine's CPU.
//
//   pretrain [--text FILE] [--steps N] [--out DIR] [--threads N]
//
// Without --text it trains on a generated corpus of short stories (no download). It
// prints the validation loss against the corpus's unigram entropy (what a model that
// ignores context would get), saves a checkpoint, the model snapshot, a CSV log and a
// loss plot (SVG) in DIR, reloads the snapshot as a frozen model and samples from it.
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/infer/generate.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/train/loop.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

constexpr std::size_t vocab = 96, context = 64, batch = 16;
using gpt = ctdl::models::gpt<vocab, context, 128, 4, 4, 512>;

// A character tokenizer of at most `vocab` symbols: the most frequent characters, the rest
// mapped to <unk>, so any UTF-8 text fits the model's vocabulary.
static ctdl::data::char_tokenizer make_tokenizer(const std::string& text) {
    ctdl::data::char_tokenizer all(text);
    if (all.vocab_size() <= vocab) return all;
    std::map<char32_t, std::size_t> count;
    for (char32_t c : ctdl::data::utf8_decode(text)) ++count[c];
    std::vector<std::pair<std::size_t, char32_t>> by_count;
    for (auto [c, n] : count) by_count.push_back({n, c});
    std::sort(by_count.rbegin(), by_count.rend());
    std::vector<char32_t> keep;
    for (std::size_t i = 0; i + 1 < vocab; ++i) keep.push_back(by_count[i].second);
    std::sort(keep.begin(), keep.end());
    return ctdl::data::char_tokenizer::from_symbols(keep, ctdl::data::char_tokenizer::unknown::map_to_unk);
}

static std::size_t parse_count(std::string_view flag, const char* text) {
    char* end = nullptr;
    const long long v = std::strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0 || v > 100000000)
        throw ctdl::error(std::string(flag) + " expects a positive whole number, got '" + text + "'");
    return static_cast<std::size_t>(v);
}

int main(int argc, char** argv) try {
    std::size_t steps = 600, threads = 0;
    std::filesystem::path text_file, out = "pretrain_out";
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if ((a == "--text" || a == "--steps" || a == "--out" || a == "--threads") && i + 1 >= argc)
            throw ctdl::error(std::string(a) + " needs a value");
        if (a == "--text") text_file = argv[++i];
        else if (a == "--steps") steps = parse_count(a, argv[++i]);
        else if (a == "--out") out = argv[++i];
        else if (a == "--threads") threads = parse_count(a, argv[++i]);
        else if (a == "--help" || a == "-h") {
            std::puts("usage: pretrain [--text FILE] [--steps N] [--out DIR] [--threads N]");
            return 0;
        } else throw ctdl::error("unknown argument '" + std::string(a) + "' (try --help)");
    }
    if (threads) ctdl::cpu::set_threads(threads);
    std::filesystem::create_directories(out);

    const std::string text = text_file.empty() ? ctdl::data::default_corpus(200000)
                                               : ctdl::data::read_text_file(text_file);
    const auto tok = make_tokenizer(text);
    const ctdl::data::text_dataset data(tok.encode(text), 0.1);
    const double entropy = data.unigram_entropy(ctdl::data::split::validation);
    std::printf("corpus: %s, %zu characters, %zu symbols; unigram entropy of the validation split %.3f nats\n",
                text_file.empty() ? "generated stories" : text_file.c_str(), data.tokens().size(), tok.vocab_size(),
                entropy);
    std::printf("model: GPT, %zu parameters (vocab %zu, context %zu, width 128, 4 heads, 4 layers), %zu threads\n",
                ctdl::parameter_count<gpt>, vocab, context, ctdl::cpu::threads());

    ctdl::model<gpt> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.lr = 3e-3f, .weight_decay = 1e-2f}};
    ctdl::rng data_rng(ctdl::seed{2});
    ctdl::train::options o;
    o.steps = steps;
    o.peak_lr = 3e-3;
    o.min_lr = 3e-4;
    o.warmup_steps = std::min<std::size_t>(50, steps / 10);
    o.eval_every = std::max<std::size_t>(steps / 6, 1);
    o.eval_batches = 8;
    o.checkpoint_every = 200;
    o.checkpoint = out / "checkpoint.safetensors";
    o.checkpoint_metadata["tokenizer"] = tok.to_string();
    o.csv = out / "log.csv";
    o.plot = out / "loss.svg";
    const auto r = ctdl::train::run<batch, context>(net, opt, data, data_rng, o);
    std::printf("trained %llu steps in %.1f s (%.0f tokens/s)\n", static_cast<unsigned long long>(r.steps), r.seconds,
                r.tokens_per_second);
    std::printf("validation loss %.3f nats/char against a unigram entropy of %.3f (%.0f%% of it)\n",
                *r.validation_loss, entropy, 100 * *r.validation_loss / entropy);

    ctdl::save(net, out / "gpt.safetensors", {{"tokenizer", tok.to_string()}});
    std::printf("wrote %s, %s, %s, %s\n", (out / "gpt.safetensors").c_str(), (out / "checkpoint.safetensors").c_str(),
                (out / "log.csv").c_str(), (out / "loss.svg").c_str());

    // The deployed form: the snapshot as a frozen model, sampling continuations.
    auto frozen = ctdl::load<ctdl::model<ctdl::frozen<gpt>>>(out / "gpt.safetensors");
    ctdl::rng sampler(ctdl::seed{3});
    const auto val = data.tokens(ctdl::data::split::validation);
    for (std::size_t s = 0; s < 3; ++s) {
        const std::size_t at = s * (val.size() / 3);
        std::vector<int> prompt(val.begin() + static_cast<std::ptrdiff_t>(at),
                                val.begin() + static_cast<std::ptrdiff_t>(at + context));
        const auto tokens = ctdl::infer::generate<context>(frozen, prompt, 160, sampler, 0.7);
        const std::string prompt_text = tok.decode(std::span<const int>(tokens).first(context));
        const std::string sample = tok.decode(std::span<const int>(tokens).subspan(context));
        std::printf("\n--- sample %zu ---\n%s[%s]\n", s + 1, prompt_text.c_str(), sample.c_str());
    }
    return *r.validation_loss < entropy ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pretrain: %s\n", e.what());
    return 2;
}
