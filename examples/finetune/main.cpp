// examples/finetune: teaches the pretraining example's GPT a task with a checkable answer,
// by full fine-tuning and by LoRA, and reports what each gained and what each kept.
//
//   finetune --from DIR [--steps N] [--threads N] [--out DIR] [--dist]
//
// DIR is a pretraining run's folder (examples/pretrain --out DIR): its gpt.safetensors, with
// the run's tokenizer (BPE or characters) in the snapshot's metadata. The task, on data generated here (no
// download), in the stories' own alphabet: "Say fox three times." -> " fox fox fox." for the
// nouns and names of the stories and counts one to five. The (word, count) pairs are split
// into training and held-out sets, so the held-out prompts are combinations never trained on.
// For each method it prints, before and after: the task accuracy on the held-out prompts
// (greedy continuation equal to the answer up to its full stop), and the validation loss on
// the pretraining text in bits per character (the general knowledge kept). Exit status 0, or 2 with a message.
//
// With --dist, or when started by mpirun (dist::launched_by_mpirun), both fine-tunings run
// data-parallel over MPI: each process trains on batch 16 of each step's 16 x processes,
// the gradients are summed while the backward pass runs, and the held-out prompts and the
// text's validation batches are shared out among the processes; only rank 0 prints and
// writes DIR. (Built without MPI, --dist is refused.)
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/sft.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../pretrain/model.hpp"
#include "../pretrain/processes.hpp"
#include "../pretrain/tokenizer.hpp"

namespace {

using gpt = examples::pretrain_gpt;
constexpr std::size_t T = examples::pretrain_context, batch = 16;
using full_t = gpt;
using lora_t = ctdl::with_lora<gpt, ctdl::lora::config<8, 16>, "qkv", "proj">;

constexpr const char* usage = "usage: finetune --from DIR [--steps N] [--threads N] [--out DIR] [--dist]";
struct usage_error : ctdl::error {
    using ctdl::error::error;
};

std::size_t parse_count(std::string_view flag, std::string_view v, std::size_t max) {
    const auto n = ctdl::parse_number<std::size_t>(v);
    if (!n || *n == 0 || *n > max)
        throw usage_error(std::string(flag) + " needs a whole number from 1 to " + std::to_string(max) + ", not '" +
                          std::string(v) + "'");
    return *n;
}

/// The task's examples: every (word, count), split by a fixed rule into train and held out.
struct task {
    std::vector<ctdl::data::prompt_response> train, held_out;
};
task make_task() {
    static constexpr std::string_view words[] = {"cat", "dog", "fox", "owl", "horse", "duck", "mouse", "sheep", "ball",
                                                 "box", "kite", "apple", "hat", "book", "cake", "key", "boat", "Mara",
                                                 "Lina", "Ada", "Ivy", "Rosa", "Tom", "Otto", "Ben", "Sam", "Finn", "Leo",
                                                 "Pip", "Rex", "Moss", "Dot"};
    static constexpr std::string_view counts[] = {"one", "two", "three", "four", "five"};
    task t;
    std::size_t k = 0;
    for (const auto w : words) {
        for (std::size_t c = 0; c < 5; ++c) {
            ctdl::data::prompt_response pr;
            pr.prompt = "Say " + std::string(w) + " " + std::string(counts[c]) + " time" + (c ? "s." : ".");
            for (std::size_t i = 0; i <= c; ++i) pr.response += " " + std::string(w);
            pr.response += ".";
                    // one (word, count) in five held out: each word with one count, each count with some words
            (((k + c) % 5 == 2) ? t.held_out : t.train).push_back(pr);
        }
        ++k;
        }
    return t;
}

/// The share of the held-out prompts whose greedy continuation equals the answer up to its
/// full stop; process r of peers answers the prompts r, r + size(), ... (first: the first
/// prompt and what was said, from the process that answered it).
template <class M, class Peers>
double accuracy(M& net, const examples::pretrain_tokenizer& tok, const std::vector<ctdl::data::prompt_response>& set,
                Peers& peers, std::string* first = nullptr) {
    ctdl::rng g(ctdl::seed{1});
    const ctdl::infer::sampling greedy{.temperature = 0, .vocab_size = tok.vocab_size()};
    double right = 0;
    for (std::size_t i = static_cast<std::size_t>(peers.rank()); i < set.size(); i += static_cast<std::size_t>(peers.size())) {
        const auto& pr = set[i];
        const auto prompt = tok.encode(pr.prompt);
        const std::size_t n = std::min(pr.response.size() + 2, T - prompt.size());
        const auto out = ctdl::infer::generate<T>(net, prompt, n, g, greedy);
        std::string said = tok.decode(std::span<const int>(out).subspan(prompt.size()));
        if (const auto stop = said.find('.'); stop != std::string::npos) said.resize(stop + 1);
        if (first && first->empty()) *first = pr.prompt + " ->" + said;
        right += said == pr.response;
    }
    return peers.sum(right) / static_cast<double>(set.size());
}

/// The validation loss on the pretraining text over 8 batches in all, shared out among the
/// processes (so the figure is the same on any number of them that divides 8).
template <class M, class Peers>
double text_loss(M& net, const ctdl::data::text_dataset& text, Peers& peers) {
    const auto per_process = std::max<std::uint64_t>(8 / static_cast<std::uint64_t>(peers.size()), 1);
    return ctdl::train::validation_loss<batch, T>(net, text, per_process, peers);
}

struct outcome {
    double accuracy_before, accuracy_after, text_loss_before, text_loss_after, task_loss_after, seconds;
    std::string example_after;
    std::size_t trained_parameters, state_bytes;
};

template <class Arch, class Load, class Peers>
outcome fine_tune(const char* name, Load&& load, const examples::pretrain_tokenizer& tok, const task& tk,
                  const ctdl::data::text_dataset& text, std::size_t steps, double lr, const std::filesystem::path& out,
                  Peers& peers) {
    ctdl::model<Arch> net{ctdl::seed{5}};
    load(net);
    const ctdl::data::sft_dataset ds(tk.train, tk.held_out, tok, {.context = T, .append_end_token = false});
    ds.require_vocab(examples::pretrain_vocab);
    outcome r{};
    r.accuracy_before = accuracy(net, tok, tk.held_out, peers);
    r.text_loss_before = text_loss(net, text, peers);
    ctdl::optim::adamw opt{net, {.lr = static_cast<float>(lr), .weight_decay = 0.0f}};
    for (const auto& s : opt.state_tensors()) r.state_bytes += s.values.size() * sizeof(float);
    r.trained_parameters = ctdl::model<Arch>::gradient_count;
    ctdl::rng data_rng(ctdl::seed{6});
    ctdl::train::options o;
    o.steps = steps;
    o.peak_lr = lr;
    o.min_lr = lr / 10;
    o.warmup_steps = steps / 10;
    o.eval_every = std::max<std::size_t>(steps / 4, 1);
    o.eval_batches = 4;
    o.progress = false;
    o.csv = out / (std::string(name) + ".csv");
    const auto rep = ctdl::train::run<batch, T>(net, opt, ds, data_rng, o, peers);
    // The model's own gradient buffer: none under LoRA, whose steps keep the gradients in
    // the dead dL/dlogits buffer (model::backward_step).
    r.state_bytes += net.gradient_bytes();
    r.seconds = rep.seconds;
    r.task_loss_after = rep.validation_loss.value_or(0);
    r.accuracy_after = accuracy(net, tok, tk.held_out, peers, &r.example_after);
    r.text_loss_after = text_loss(net, text, peers);
    return r;
}

/// Both fine-tunings on this process; peers is train::one_process or a dist::data_parallel,
/// and only its root prints and writes.
template <class Peers>
int run(const std::filesystem::path& from, const std::filesystem::path& out, std::size_t steps, Peers& peers) {
    const bool root = peers.root();
    const auto snapshot = from / "gpt.safetensors";
    // The snapshot and its tokenizer are checked on every process before anything is written.
    std::optional<examples::pretrain_tokenizer> loaded;
    peers.collectively("reading the pretraining snapshot", [&] {
        [[maybe_unused]] const auto pretrained = ctdl::load<ctdl::model<ctdl::frozen<gpt>>>(snapshot);
        loaded.emplace(examples::load_tokenizer(snapshot));  // BPE or characters, as the run learned it
    });
    const auto& tok = *loaded;
    const std::string corpus = ctdl::data::default_corpus(200000);
    const ctdl::data::text_dataset text(tok.encode(corpus), 0.1);
    const auto val_tokens = text.tokens(ctdl::data::split::validation);
    // nats per token -> bits per character (comparable whatever the tokenizer)
    const double per_char = 1 / (std::log(2.0) * double(tok.characters(val_tokens)) / double(val_tokens.size()));
    const task tk = make_task();
    peers.collectively("making the output folder", [&] {
        if (root) std::filesystem::create_directories(out);
    });
    if (root) {
        std::printf("task: %zu training and %zu held-out prompts, e.g. \"%s\" -> \"%s\"; %zu steps of batch %zu, %zu threads",
                    tk.train.size(), tk.held_out.size(), tk.held_out[0].prompt.c_str(), tk.held_out[0].response.c_str(),
                    steps, batch, ctdl::cpu::threads());
        if (peers.size() > 1) std::printf(" x %d processes (batch %zu each)", peers.size(), batch);
        std::printf("\n");
    }

    const auto full = fine_tune<full_t>(
        "full", [&](auto& net) { ctdl::load_into(net, snapshot); }, tok, tk, text, steps, 1e-4, out, peers);
    const auto lora = fine_tune<lora_t>(
        "lora", [&](auto& net) { ctdl::lora::load_base(net, snapshot); }, tok, tk, text, steps, 1e-3, out, peers);
    if (!root) return 0;

    std::printf("\n%-6s %10s %14s %10s %10s %12s %12s %8s\n", "method", "trained", "grad+state", "acc before",
                "acc after", "text before", "text after", "seconds");
    for (const auto& [name, r] : {std::pair{"full", full}, std::pair{"lora", lora}})
        std::printf("%-6s %10zu %11.2f MB %9.0f%% %9.0f%% %12.3f %12.3f %8.1f\n", name, r.trained_parameters,
                    static_cast<double>(r.state_bytes) / 1e6, 100 * r.accuracy_before, 100 * r.accuracy_after,
                    r.text_loss_before * per_char, r.text_loss_after * per_char, r.seconds);
    for (const auto& [name, r] : {std::pair{"full", full}, std::pair{"lora", lora}})
        std::printf("%s, held out, after (task validation loss %.3f nats/token): %s\n", name, r.task_loss_after,
                    r.example_after.c_str());
    std::printf("(accuracy on the held-out prompts; text: validation loss on the pretraining stories, bits/char; "
                "%s tokenizer)\n", tok.name());
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    std::filesystem::path from, out = "finetune_run";
    std::size_t steps = 600, threads = 0;
    bool dist = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if ((a == "--from" || a == "--steps" || a == "--out" || a == "--threads") && i + 1 >= argc)
            throw usage_error(std::string(a) + " needs a value");
        if (a == "--from") from = argv[++i];
        else if (a == "--steps") steps = parse_count(a, argv[++i], 1000000);
        else if (a == "--out") out = argv[++i];
        else if (a == "--threads") threads = parse_count(a, argv[++i], 1024);
        else if (a == "--dist") dist = true;
        else if (a == "--help" || a == "-h") {
            std::printf("%s\n", usage);
            return 0;
        } else
            throw usage_error("unknown argument '" + std::string(a) + "'");
    }
    if (from.empty()) throw usage_error("--from needs the folder of a pretraining run (examples/pretrain --out DIR)");
    if (out.empty()) throw usage_error("--out needs a folder name");
    if (threads) ctdl::cpu::set_threads(threads);
    return examples::on_processes<usage_error>(dist, [&](auto& peers) { return run(from, out, steps, peers); });
} catch (const usage_error& e) {
    std::fprintf(stderr, "finetune: %s\n%s\n", e.what(), usage);
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "finetune: %s\n", e.what());
    return 2;
}
