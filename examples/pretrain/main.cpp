// Pretraining a small GPT by next-token prediction, on this machine's CPU.
//
//   pretrain [--text FILE] [--steps N] [--out DIR] [--threads N] [--tokenizer bpe|char] [--vocab N] [--dist]
//   mpirun -np 4 pretrain [...]                      (data-parallel: see README, "Training on several processes")
//
// Without --text it trains on a generated corpus of short stories (no download). The text
// is cut into tokens by a byte-level BPE vocabulary learned from it (--tokenizer bpe, the
// default: the 256 bytes and merges up to --vocab ids) or into characters (--tokenizer char:
// its most frequent --vocab - 1 characters and <unk>); --vocab defaults to the model's
// vocabulary, pretrain_vocab (model.hpp), and may not exceed it. It prints the validation
// loss in nats per token and in bits per character (comparable across tokenizers) against
// the corpus's unigram entropy (what a model that ignores context would get), saves a
// checkpoint, the model snapshot (its tokenizer in the metadata), for BPE the tokenizer as
// DIR/tokenizer.json, a CSV log and a loss plot (SVG) in DIR, reloads the snapshot and its
// tokenizer as a frozen model and samples from it. --threads defaults to the machine's
// hardware threads.
//
// With --dist, or when started by mpirun (dist::launched_by_mpirun), it trains data-parallel
// over MPI (dist/): every process reads the text, takes batch 16 of each step's global
// batch of 16 x processes, and the gradients are summed while the backward pass runs; only
// rank 0 prints, writes DIR and samples. A failure on any process (an unreadable text, a
// lost process) stops all of them with an error. (Built without MPI, --dist is refused.)
//
// Exit status: 0 when the run completes (the last line of the summary says whether the
// validation loss is below the unigram entropy yet), 2 on a bad argument or a failure.
// The text, its length and the arguments are checked before anything is written, so a run
// that cannot start leaves an earlier run's files in DIR as they were.
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/prompts.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/infer/generate.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/train/loop.hpp>

#include "model.hpp"
#include "processes.hpp"
#include "tokenizer.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

constexpr std::size_t vocab = examples::pretrain_vocab, context = examples::pretrain_context, batch = 16;
using gpt = examples::pretrain_gpt;
constexpr std::size_t max_steps = 100000000, max_threads = 1024;
constexpr const char* usage =
    "usage: pretrain [--text FILE] [--steps N] [--out DIR] [--threads N] [--tokenizer bpe|char] [--vocab N] [--dist]";

// A mistake on the command line: the message, then the usage line.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A whole number in [1, max], digits only: anything else is a usage error (exit 2).
static std::size_t parse_count(std::string_view flag, std::string_view text, std::size_t max) {
    std::size_t v = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), v);
    const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || err != std::errc{} || end != text.data() + text.size() || v == 0 || v > max)
        throw usage_error(std::string(flag) + " expects a whole number from 1 to " + std::to_string(max) + ", got '" +
                          std::string(text) + "'");
    return v;
}

struct arguments {
    std::size_t steps = 600, threads = 0, max_ids = vocab;
    examples::tokenizer_kind kind = examples::tokenizer_kind::bpe;
    std::filesystem::path text_file, out = "pretrain_out";
};

// The run on this process; peers is train::one_process or a dist::data_parallel, and only
// its root prints and writes.
template <class Peers>
int pretrain(const arguments& args, Peers& peers) {
    const auto& [steps, threads, max_ids, kind, text_file, out] = args;
    const bool root = peers.root();
    // Everything is checked before anything is written: a run that cannot start leaves
    // the outputs of an earlier run in DIR as they were. On several processes, a check that
    // fails on one stops all of them (collectively).
    std::string text;
    peers.collectively("reading the text", [&] {
        text = text_file.empty() ? ctdl::data::default_corpus(200000) : ctdl::data::read_text_file(text_file);
    });
    const auto tok = examples::pretrain_tokenizer::learn(kind, text, max_ids);
    const ctdl::data::text_dataset data(tok.encode(text), 0.1);
    peers.collectively("checking the text", [&] {
        // A learned vocabulary must give the text back exactly (the character one maps the
        // characters it left out to <unk>).
        if (kind == examples::tokenizer_kind::bpe && tok.decode(data.tokens()) != text)
            throw ctdl::error("the BPE tokenizer does not decode the text it encoded back to the text");
        const char* unit = kind == examples::tokenizer_kind::bpe ? "tokens" : "characters";
        for (const auto part : {ctdl::data::split::train, ctdl::data::split::validation})
            if (data.size(part) < context + 1)
                throw ctdl::error("the text is too short: " + std::to_string(data.tokens().size()) + " " + unit +
                                  " leave " + std::to_string(data.size(part)) + " in the " +
                                  ctdl::data::split_name(part) + " split (the " +
                                  (part == ctdl::data::split::train ? "first 90%" : "last 10%") + "), and a window of " +
                                  std::to_string(context) + " " + unit + " needs " + std::to_string(context + 1) +
                                  "; give a text of at least " + std::to_string(10 * (context + 1)) + " " + unit +
                                  (kind == examples::tokenizer_kind::bpe ? " (or --tokenizer char)" : ""));
        data.require_vocab(vocab);
    });
    if (threads) ctdl::cpu::set_threads(threads);
    const auto val_tokens = data.tokens(ctdl::data::split::validation);
    // Characters per token of the validation split: converts nats per token into bits per character.
    const double chars_per_token = double(tok.characters(val_tokens)) / double(val_tokens.size());
    const auto bits_per_char = [&](double nats_per_token) { return nats_per_token / std::log(2.0) / chars_per_token; };
    const double entropy = data.unigram_entropy(ctdl::data::split::validation);
    std::vector<char32_t> characters = ctdl::data::utf8_decode(text);
    const std::size_t length = characters.size();
    std::sort(characters.begin(), characters.end());
    const auto symbols = static_cast<std::size_t>(std::unique(characters.begin(), characters.end()) - characters.begin());
    if (root) {
        std::printf("corpus: %s, %zu characters, %zu symbols\n", text_file.empty() ? "generated stories" : text_file.c_str(),
                    length, symbols);
        std::printf("tokenizer: %s, %zu ids; %zu tokens (%.2f characters per token in the validation split); unigram "
                    "entropy of the validation split %.3f nats/token (%.3f bits/char)\n",
                    tok.name(), tok.vocab_size(), data.tokens().size(), chars_per_token, entropy, bits_per_char(entropy));
        std::printf("model: GPT, %zu parameters (vocab %zu, context %zu, width 128, 4 heads, 4 layers), %zu threads",
                    ctdl::parameter_count<gpt>, vocab, context, ctdl::cpu::threads());
        if (peers.size() > 1) std::printf(" x %d processes (batch %zu each)", peers.size(), batch);
        std::printf("\n");
    }
    peers.collectively("making the output folder", [&] {
        if (root) std::filesystem::create_directories(out);
    });

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
    o.checkpoint_metadata.insert(tok.metadata_entry());
    o.csv = out / "log.csv";
    o.plot = out / "loss.svg";
    const auto r = ctdl::train::run<batch, context>(net, opt, data, data_rng, o, peers);
    if (!root) return 0;
    std::printf("trained %llu steps in %.1f s (%.0f tokens/s)\n", static_cast<unsigned long long>(r.steps), r.seconds,
                r.tokens_per_second);
    std::printf("validation loss %.3f nats/token, %.3f bits/char, against a unigram entropy of %.3f (%.0f%% of it)%s\n",
                *r.validation_loss, bits_per_char(*r.validation_loss), entropy, 100 * *r.validation_loss / entropy,
                *r.validation_loss < entropy ? "" : "; not below it yet: train longer (--steps)");

    ctdl::save(net, out / "gpt.safetensors", {tok.metadata_entry()});
    examples::save_tokenizer_file(tok, out);
    const std::string tokenizer_json = tok.bpe() ? ", " + (out / examples::tokenizer_file).string() : "";
    std::printf("wrote %s, %s, %s, %s%s\n", (out / "gpt.safetensors").c_str(), (out / "checkpoint.safetensors").c_str(),
                (out / "log.csv").c_str(), (out / "loss.svg").c_str(), tokenizer_json.c_str());

    // The deployed form: the snapshot and its tokenizer as a frozen model, sampling
    // continuations of three prompts spread over the validation split (shorter ones when
    // the split is short), and drawing only ids the tokenizer has (the model has `vocab`
    // output ids, the tokenizer maybe fewer).
    auto frozen = ctdl::load<ctdl::model<ctdl::frozen<gpt>>>(out / "gpt.safetensors");
    const auto loaded = examples::load_tokenizer(out / "gpt.safetensors");
    if (loaded.metadata_entry() != tok.metadata_entry())
        throw ctdl::error("the tokenizer loaded back from " + (out / "gpt.safetensors").string() +
                          " is not the one trained with");
    ctdl::rng sampler(ctdl::seed{3});
    const auto val = val_tokens;
    const ctdl::infer::sampling how{.temperature = 0.7, .vocab_size = loaded.vocab_size()};
    std::size_t s = 0;
    for (const auto [at, length] : ctdl::data::spread_prompts(val.size(), 3, context)) {
        const std::span<const int> prompt = val.subspan(at, length);
        const auto tokens =
            ctdl::infer::generate<context>(frozen, std::vector<int>(prompt.begin(), prompt.end()), 160, sampler, how);
        const std::string prompt_text = loaded.decode(std::span<const int>(tokens).first(length));
        const std::string sample = loaded.decode(std::span<const int>(tokens).subspan(length));
        std::printf("\n--- sample %zu ---\n%s[%s]\n", ++s, prompt_text.c_str(), sample.c_str());
    }
    return 0;
}

int main(int argc, char** argv) try {
    arguments args;
    bool dist = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if ((a == "--text" || a == "--steps" || a == "--out" || a == "--threads" || a == "--tokenizer" ||
             a == "--vocab") &&
            i + 1 >= argc)
            throw usage_error(std::string(a) + " needs a value");
        if (a == "--text") args.text_file = argv[++i];
        else if (a == "--steps") args.steps = parse_count(a, argv[++i], max_steps);
        else if (a == "--out") args.out = argv[++i];
        else if (a == "--threads") args.threads = parse_count(a, argv[++i], max_threads);
        else if (a == "--vocab") args.max_ids = parse_count(a, argv[++i], vocab);
        else if (a == "--tokenizer") {
            const std::string_view v = argv[++i];
            if (v == "bpe") args.kind = examples::tokenizer_kind::bpe;
            else if (v == "char") args.kind = examples::tokenizer_kind::chars;
            else throw usage_error("--tokenizer expects bpe or char, got '" + std::string(v) + "'");
        } else if (a == "--dist") dist = true;
        else if (a == "--help" || a == "-h") {
            std::puts(usage);
            return 0;
        } else throw usage_error("unknown argument '" + std::string(a) + "'");
    }
    if (args.out.empty()) throw usage_error("--out needs a folder name");
    if (args.kind == examples::tokenizer_kind::bpe && args.max_ids < 256)
        throw usage_error("--vocab " + std::to_string(args.max_ids) +
                          ": a byte-level BPE vocabulary needs at least 256 ids (one per byte); give 256 to " +
                          std::to_string(vocab) + ", or --tokenizer char");
    if (args.kind == examples::tokenizer_kind::chars && args.max_ids < 2)
        throw usage_error("--vocab 1: a character vocabulary needs at least 2 ids (a character and <unk>)");
    return examples::on_processes<usage_error>(dist, [&](auto& peers) { return pretrain(args, peers); });
} catch (const usage_error& e) {
    std::fprintf(stderr, "pretrain: %s\n%s\n", e.what(), usage);
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "pretrain: %s\n", e.what());
    return 2;
}
