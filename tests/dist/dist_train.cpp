// Data-parallel training over MPI, run by ctest as `mpirun -np 2 dist_train CASE DIR`
// (tests/CMakeLists.txt). Each case prints what it measured and exits 0 when its checks
// hold, 1 when one fails, 2 on an error (a ctdl::error from the run: the fault cases).
//
//   exact     2 ranks x batch B against 1 rank x batch 2B, 20 AdamW steps with warmup and
//             clipping: the 2-rank weights equal on both ranks bit for bit, and within
//             float rounding of the 1-rank ones (the difference is printed); without
//             overlap, in one bucket, the same bits as with overlap in many.
//   sft       a masked batch source (data::sft_dataset, the loss on responses only): 2 ranks x
//             batch B against 1 rank x batch B with 2 accumulated micro-batches (the same
//             draws, each micro-batch's masked mean one share of the gradient either way).
//   resume    a checkpoint of a 2-rank run resumed on 1 rank, and one of a 1-rank run
//             resumed on 2 ranks, against the same runs uninterrupted; a 2-rank resume on
//             2 ranks: bit for bit.
//   dead      rank 1 dies (std::_Exit) in step 7 (checkpoints every 2 steps): rank 0 must
//             stop, with its error or the launcher's, within the timeout (3 s here).
//   hang      rank 1 stops answering in step 7: rank 0 stops with its timeout error.
//   bad_data  rank 1's data file does not exist: both ranks stop with one error naming it.
//   check     (one process) DIR/ckpt.safetensors loads and its step is even and < 7.
#include <ctdl/ctdl.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/prompt_response.hpp>
#include <ctdl/data/sft.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/dist/data_parallel.hpp>
#include <ctdl/dist/mpi.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/nn/lora.hpp>
#include <ctdl/train/loop.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t V = 32, T = 16, B = 4;
struct net_type : ctdl::models::gpt<V, T, 32, 2, 2, 64> {};
using model = ctdl::model<net_type>;
// LoRA on the attention projections, the rest frozen: each step's gradients live in its
// dL/dlogits buffer (model::backward_step), which the reduction must then sum in place.
using lora_net = ctdl::with_lora<net_type, ctdl::lora::config<2, 4>, "qkv", "proj">;
static_assert(ctdl::model<lora_net>::activations<ctdl::shape<B, T>, int>::gradients_in_dout);
using optimizer = ctdl::optim::adamw<model>;

int failures = 0;
void expect(bool ok, const std::string& what) {
    if (!ok) {
        std::fprintf(stderr, "FAILED: %s\n", what.c_str());
        ++failures;
    }
}

// A token stream with something to learn: t[i+1] = 3 t[i] + 1 mod V, with 1 in 8 random.
ctdl::data::text_dataset make_data() {
    ctdl::rng g(ctdl::seed{5});
    std::vector<int> tokens(6000);
    int t = 0;
    for (auto& v : tokens) {
        t = g.next_below(8) == 0 ? static_cast<int>(g.next_below(V)) : (3 * t + 1) % static_cast<int>(V);
        v = t;
    }
    return ctdl::data::text_dataset(std::move(tokens), 0.1);
}

ctdl::train::options run_options(std::uint64_t stop_after = 0) {
    ctdl::train::options o;
    o.steps = 20;
    o.stop_after = stop_after;
    o.peak_lr = 3e-3;
    o.min_lr = 3e-4;
    o.warmup_steps = 5;
    o.clip_norm = 1.0;
    o.eval_every = 10;
    o.eval_batches = 4;
    o.progress = false;
    return o;
}

struct trained {
    std::vector<float> weights;
    std::size_t gradient_bytes = 0;  // the model's own gradient buffer after the run
    double train_loss = 0, validation_loss = 0;
};

// "a+b=" -> "a+b" pairs over the symbols 0-9 + = and '#' (the end token): 400 of them.
ctdl::data::sft_dataset make_sft_data() {
    static const ctdl::data::char_tokenizer tok("0123456789+= #");
    ctdl::rng g{ctdl::seed{11}};
    std::string lines;
    for (int i = 0; i < 400; ++i) {
        const auto a = g.next_below(10), b = g.next_below(10);
        lines += "{\"prompt\": \"" + std::to_string(a) + "+" + std::to_string(b) + "=\", \"response\": \"" +
                 std::to_string(a + b) + "\"}\n";
    }
    const auto pairs = ctdl::data::parse_prompt_responses(lines, "sums");
    return ctdl::data::sft_dataset(pairs, tok,
                                   {.context = T, .validation_fraction = 0.1, .end_token = *tok.find(U'#')});
}

template <std::size_t Rows, class Peers, class Data = ctdl::data::text_dataset, class Net = net_type>
trained train(Peers* peers, ctdl::seed s, const ctdl::train::options& o, const std::filesystem::path& resume = {},
              const Data& ds = make_data()) {
    using net_model = ctdl::model<Net>;
    net_model net{s};
    ctdl::optim::adamw<net_model> opt{net, {.lr = 3e-3f, .weight_decay = 1e-2f}};
    ctdl::rng data_rng(ctdl::seed{2});
    if (!resume.empty() && (!peers || peers->root())) ctdl::train::load_checkpoint(resume, net, opt, data_rng);
    const auto r = peers ? ctdl::train::run<Rows, T>(net, opt, ds, data_rng, o, *peers)
                         : ctdl::train::run<Rows, T>(net, opt, ds, data_rng, o);
    trained t;
    t.weights.assign(net.parameters(), net.parameters() + net_model::parameter_count);
    t.gradient_bytes = net.gradient_bytes();
    t.train_loss = r.train_loss;
    t.validation_loss = r.validation_loss.value_or(0);
    return t;
}

// The largest weight difference, apart (key_bias) for the key third of each attention's
// qkv bias: a key bias shifts every score of a query by the same amount, which softmax
// ignores, so its true gradient is 0 and what a run computes for it is rounding noise;
// Adam normalises that noise into steps of about lr whatever its size, so two runs that
// round differently move these weights apart by up to ~lr per step. Everything else
// differs by what the rounding of the gradient sums makes.
struct difference {
    double max_abs = 0, max_weight = 0, key_bias = 0;
};
difference compare(const std::vector<float>& a, const std::vector<float>& b) {
    difference d;
    std::vector<bool> is_key_bias(a.size(), false);
    constexpr std::size_t D = 32;
    for (const auto& p : model::parameter_table())
        if (p.name.ends_with("qkv.bias"))
            for (std::size_t i = D; i < 2 * D; ++i) is_key_bias[p.offset + i] = true;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double diff = std::abs(static_cast<double>(a[i]) - b[i]);
        (is_key_bias[i] ? d.key_bias : d.max_abs) = std::max(is_key_bias[i] ? d.key_bias : d.max_abs, diff);
        d.max_weight = std::max(d.max_weight, std::abs(static_cast<double>(a[i])));
    }
    return d;
}

// Whether every rank holds rank 0's weights bit for bit.
template <class Comm>
bool same_on_all_ranks(Comm& comm, const std::vector<float>& w) {
    std::vector<float> root = w;
    comm.broadcast(root.data(), root.size(), 0);
    double differ = root == w ? 0 : 1;
    comm.sum(&differ, 1);
    return differ == 0;
}

// Float rounding of a 20-step run from one batch split differently: the gradient sums are
// added in another order, a relative ~1e-7 of each. 1e-5 of the largest weight is ~100
// times what that leaves in the weights here (a few float ulps), and far below one step
// that a wrong gradient would make (lr 3e-3). The key biases (compare) move apart by up
// to lr per step: 20 · 3e-3.
constexpr double rounding_bound = 1e-5, key_bias_bound = 20 * 3e-3;

int case_exact(ctdl::dist::mpi& comm) {
    // Each rank starts from other weights: share_state must make them rank 0's.
    ctdl::dist::data_parallel<ctdl::dist::mpi> peers{comm, {.bucket_bytes = 4096}};
    const auto two = train<B>(&peers, ctdl::seed{1 + 100 * static_cast<unsigned>(comm.rank())}, run_options());
    const auto& stats = peers.last_reduction();
    expect(same_on_all_ranks(comm, two.weights), "the 2-rank weights differ between the ranks");
    expect(stats.bytes == model::gradient_count * sizeof(float), "bytes reduced per step");
    // A bucket can start during the backward pass when it lies wholly after the first
    // step's gradients (the token embedding's), the last to become final.
    std::size_t can_start_early = 0;
    for (const auto& [b, e] : peers.buckets(model::gradient_count, 4096 / sizeof(float)))
        can_start_early += b >= model::parameter_table()[0].size;
    expect(stats.buckets > 2 && stats.started_during_backward == can_start_early,
           "every bucket after the token embedding's gradients is started during the backward pass");
    ctdl::dist::data_parallel<ctdl::dist::mpi> whole{comm, {.bucket_bytes = std::size_t{1} << 30, .overlap = false}};
    const auto no_overlap = train<B>(&whole, ctdl::seed{1}, run_options());
    expect(no_overlap.weights == two.weights, "one bucket after the backward pass gives other bits than many during it");
    if (comm.rank() == 0) {
        const auto one = train<2 * B>(static_cast<ctdl::train::one_process*>(nullptr), ctdl::seed{1}, run_options());
        const auto d = compare(two.weights, one.weights);
        std::printf("exact: %zu parameters, %zu buckets of <= 4096 bytes (%zu started during backward), %zu bytes "
                    "reduced per step\n",
                    model::parameter_count, stats.buckets, stats.started_during_backward, stats.bytes);
        std::printf("exact: after 20 steps, 2 ranks x batch %zu vs 1 rank x batch %zu: max |dw| = %.3g (largest |w| "
                    "%.3g, relative %.3g) over all weights but the attention key biases, %.3g on those (true "
                    "gradient 0); train loss %.9g vs %.9g; validation loss %.9g vs %.9g\n",
                    B, 2 * B, d.max_abs, d.max_weight, d.max_abs / d.max_weight, d.key_bias, two.train_loss,
                    one.train_loss, two.validation_loss, one.validation_loss);
        expect(d.key_bias <= key_bias_bound, "the key biases moved apart by more than lr per step");
        expect(d.max_abs <= rounding_bound * d.max_weight, "2 ranks x B and 1 rank x 2B differ by more than rounding");
        expect(std::abs(two.train_loss - one.train_loss) <= 1e-4 * std::abs(one.train_loss), "train loss");
        expect(std::abs(two.validation_loss - one.validation_loss) <= 1e-4 * std::abs(one.validation_loss),
               "validation loss");
    }
    // LoRA: the gradients that the buckets sum lie in each rank's dL/dlogits buffer.
    using data_parallel = ctdl::dist::data_parallel<ctdl::dist::mpi>;
    data_parallel lora_peers{comm, {.bucket_bytes = 1024}};
    const auto lora2 = train<B, data_parallel, ctdl::data::text_dataset, lora_net>(
        &lora_peers, ctdl::seed{1 + 100 * static_cast<unsigned>(comm.rank())}, run_options());
    expect(same_on_all_ranks(comm, lora2.weights), "LoRA: the 2-rank weights differ between the ranks");
    expect(lora2.gradient_bytes == 0, "LoRA: the model made a gradient buffer of its own");
    expect(lora_peers.last_reduction().started_during_backward > 0, "LoRA: no bucket started during the backward pass");
    if (comm.rank() == 0) {
        const auto lora1 = train<2 * B, ctdl::train::one_process, ctdl::data::text_dataset, lora_net>(
            nullptr, ctdl::seed{1}, run_options());
        const auto start = train<2 * B, ctdl::train::one_process, ctdl::data::text_dataset, lora_net>(
            nullptr, ctdl::seed{1}, run_options(1));
        double d = 0, w = 0, moved = 0;
        for (std::size_t i = 0; i < lora1.weights.size(); ++i) {
            d = std::max(d, std::abs(static_cast<double>(lora2.weights[i]) - lora1.weights[i]));
            w = std::max(w, std::abs(static_cast<double>(lora1.weights[i])));
            moved = std::max(moved, std::abs(static_cast<double>(start.weights[i]) - lora1.weights[i]));
        }
        std::printf("exact: LoRA (gradients in dL/dlogits), 2 ranks x batch %zu vs 1 rank x batch %zu after 20 steps: "
                    "max |dw| = %.3g (relative %.3g; the adapters moved %.3g from step 1); train loss %.9g vs %.9g\n",
                    B, 2 * B, d, d / w, moved, lora2.train_loss, lora1.train_loss);
        expect(lora1.gradient_bytes == 0, "LoRA on 1 rank: the model made a gradient buffer of its own");
        expect(d <= rounding_bound * w, "LoRA: 2 ranks x B and 1 rank x 2B differ by more than rounding");
        expect(moved > 100 * rounding_bound * w, "LoRA: the check cannot tell runs apart");
    }
    return failures ? 1 : 0;
}

int case_sft(ctdl::dist::mpi& comm) {
    ctdl::dist::data_parallel<ctdl::dist::mpi> peers{comm, {.bucket_bytes = 4096}};
    const auto ds = make_sft_data();
    const auto two = train<B>(&peers, ctdl::seed{1 + 100 * static_cast<unsigned>(comm.rank())}, run_options(), {}, ds);
    expect(same_on_all_ranks(comm, two.weights), "the 2-rank weights differ between the ranks");
    if (comm.rank() == 0) {
        auto o = run_options();
        o.grad_accumulation = 2;
        o.eval_batches *= 2;  // validation: eval_batches batches of B on each of the 2 ranks
        const auto one = train<B>(static_cast<ctdl::train::one_process*>(nullptr), ctdl::seed{1}, o, {}, ds);
        const auto d = compare(two.weights, one.weights);
        std::printf("sft: after 20 steps, 2 ranks x batch %zu vs 1 rank x batch %zu x 2 micro-batches (masked loss): "
                    "max |dw| = %.3g (relative %.3g; key biases %.3g); train loss %.9g vs %.9g; validation loss "
                    "%.9g vs %.9g\n",
                    B, B, d.max_abs, d.max_abs / d.max_weight, d.key_bias, two.train_loss, one.train_loss,
                    two.validation_loss, one.validation_loss);
        expect(d.max_abs <= rounding_bound * d.max_weight, "2 ranks and 2 micro-batches differ by more than rounding");
        expect(d.key_bias <= key_bias_bound, "key biases");
        expect(std::abs(two.train_loss - one.train_loss) <= 1e-5 * std::abs(one.train_loss), "train loss");
        expect(std::abs(two.validation_loss - one.validation_loss) <= 1e-5 * std::abs(one.validation_loss),
               "validation loss");
    }
    return failures ? 1 : 0;
}

int case_resume(ctdl::dist::mpi& comm, const std::filesystem::path& dir) {
    ctdl::dist::data_parallel<ctdl::dist::mpi> peers{comm};
    auto* alone = static_cast<ctdl::train::one_process*>(nullptr);
    const auto ckpt2 = dir / "two_ranks_step10.safetensors", ckpt1 = dir / "one_rank_step10.safetensors";
    // 2 ranks, uninterrupted and in two halves.
    const auto straight2 = train<B>(&peers, ctdl::seed{1}, run_options());
    auto first_half = run_options(10);
    first_half.checkpoint = ckpt2;
    train<B>(&peers, ctdl::seed{1}, first_half);
    const auto resumed2 = train<B>(&peers, ctdl::seed{7}, run_options(), ckpt2);
    expect(same_on_all_ranks(comm, resumed2.weights), "resumed 2-rank weights differ between the ranks");
    // 1 rank (on rank 0): uninterrupted, its checkpoint at step 10, and the 2-rank one resumed.
    trained straight1, resumed_on_1;
    if (comm.rank() == 0) {
        straight1 = train<2 * B>(alone, ctdl::seed{1}, run_options());
        auto half = run_options(10);
        half.checkpoint = ckpt1;
        train<2 * B>(alone, ctdl::seed{1}, half);
        resumed_on_1 = train<2 * B>(alone, ctdl::seed{7}, run_options(), ckpt2);
    }
    // The 1-rank checkpoint resumed on 2 ranks.
    const auto resumed_on_2 = train<B>(&peers, ctdl::seed{7}, run_options(), ckpt1);
    if (comm.rank() == 0) {
        expect(resumed2.weights == straight2.weights, "2 ranks resumed on 2 ranks: not the same bits");
        const auto d21 = compare(resumed_on_1.weights, straight2.weights);
        const auto d12 = compare(resumed_on_2.weights, straight1.weights);
        std::printf("resume: 2-rank checkpoint (step 10) resumed on 2 ranks: %s the uninterrupted run\n",
                    resumed2.weights == straight2.weights ? "bitwise equal to" : "DIFFERENT from");
        std::printf("resume: 2-rank checkpoint resumed on 1 rank vs 2 ranks uninterrupted, step 20: max |dw| = %.3g "
                    "(relative %.3g; key biases %.3g)\n",
                    d21.max_abs, d21.max_abs / d21.max_weight, d21.key_bias);
        std::printf("resume: 1-rank checkpoint resumed on 2 ranks vs 1 rank uninterrupted, step 20: max |dw| = %.3g "
                    "(relative %.3g; key biases %.3g)\n",
                    d12.max_abs, d12.max_abs / d12.max_weight, d12.key_bias);
        expect(d21.max_abs <= rounding_bound * d21.max_weight, "2 -> 1 ranks resume differs by more than rounding");
        expect(d12.max_abs <= rounding_bound * d12.max_weight, "1 -> 2 ranks resume differs by more than rounding");
        // Resuming must matter: a run from step 10's weights that restarted the data or the
        // optimizer would differ by far more (a fresh start from seed 7 does).
        const auto fresh = train<2 * B>(alone, ctdl::seed{7}, run_options());
        const auto df = compare(fresh.weights, straight1.weights);
        expect(df.max_abs > 100 * rounding_bound * df.max_weight, "the check cannot tell runs apart");
        expect(d21.key_bias <= key_bias_bound && d12.key_bias <= key_bias_bound, "key biases after a resume");
    }
    return failures ? 1 : 0;
}

// data_parallel that fails on rank 1 in the backward pass of step `at` (1-based): dies or hangs.
struct faulty : ctdl::dist::data_parallel<ctdl::dist::mpi> {
    using base = ctdl::dist::data_parallel<ctdl::dist::mpi>;
    bool die;
    std::uint64_t at, calls = 0;
    faulty(ctdl::dist::mpi& c, bool d, std::uint64_t step) : base(c), die(d), at(step) {}
    template <class Model, class Acts, class X, class DY>
    void backward(Model& net, Acts& acts, const X& x, DY&& dy, bool accumulate, bool last) {
        if (rank() == 1 && ++calls == at) {
            if (die) {
                std::fprintf(stderr, "dist_train: rank 1 dies in step %llu\n", static_cast<unsigned long long>(at));
                std::_Exit(9);
            }
            std::fprintf(stderr, "dist_train: rank 1 hangs in step %llu\n", static_cast<unsigned long long>(at));
            std::this_thread::sleep_for(std::chrono::seconds(60));  // bounded, should the launcher miss it
        }
        base::backward(net, acts, x, dy, accumulate, last);
    }
};

int case_fault(ctdl::dist::mpi& comm, const std::filesystem::path& dir, bool die) {
    comm.set_timeout(std::chrono::seconds(3));
    faulty peers{comm, die, 7};
    auto o = run_options();
    o.checkpoint = dir / "ckpt.safetensors";
    o.checkpoint_every = 2;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        train<B>(&peers, ctdl::seed{1}, o);
    } catch (const ctdl::error&) {
        std::fprintf(stderr, "dist_train: rank %d stopped after %.1f s\n", comm.rank(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        throw;
    }
    std::fprintf(stderr, "FAILED: rank %d finished a run that lost a rank\n", comm.rank());
    return 1;
}

int case_bad_data(ctdl::dist::mpi& comm, const std::filesystem::path& dir) {
    const auto mine = dir / ("data-" + std::to_string(comm.rank()) + ".txt");
    if (comm.rank() == 0) std::ofstream(mine) << "some text for rank 0\n";
    std::string text;
    ctdl::dist::collectively(comm, "reading the data", [&] { text = ctdl::data::read_text_file(mine); });
    std::fprintf(stderr, "FAILED: rank %d went on without rank 1's data\n", comm.rank());
    return 1;
}

int case_check(const std::filesystem::path& dir) {
    model net;
    optimizer opt{net};
    ctdl::rng g;
    const auto info = ctdl::train::load_checkpoint(dir / "ckpt.safetensors", net, opt, g);
    std::printf("check: the last checkpoint is intact, step %llu\n", static_cast<unsigned long long>(info.step));
    expect(info.step > 0 && info.step % 2 == 0 && info.step < 7, "the checkpoint's step");
    return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc != 3) {
        std::fprintf(stderr, "usage: dist_train exact|sft|resume|dead|hang|bad_data|check DIR\n");
        return 2;
    }
    const std::string_view which = argv[1];
    const std::filesystem::path dir = argv[2];
    std::filesystem::create_directories(dir);
    ctdl::cpu::set_threads(1);
    if (which == "check") return case_check(dir);
    ctdl::dist::mpi comm;
    if (comm.size() != 2) {
        std::fprintf(stderr, "dist_train %s: run on 2 ranks (mpirun -np 2), not %d\n", argv[1], comm.size());
        return 2;
    }
    if (which == "exact") return case_exact(comm);
    if (which == "sft") return case_sft(comm);
    if (which == "resume") return case_resume(comm, dir);
    if (which == "dead" || which == "hang") return case_fault(comm, dir, which == "dead");
    if (which == "bad_data") return case_bad_data(comm, dir);
    std::fprintf(stderr, "dist_train: unknown case '%s'\n", argv[1]);
    return 2;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dist_train: %s\n", e.what());
    return 2;
}
