// Data-parallel pretraining steps over MPI (benchmarks/run_dist.sh runs it as 1 process x 2
// threads and as mpirun -np 2 x 1 thread, and prints the table).
//
// Model: the pretraining example's GPT, gpt<96, 64, 128, 4, 4, 512> (0.83 M parameters),
// AdamW; one global batch of 16 x 64 tokens per step whatever the process count (batch 16 on
// one process, 8 on each of two): the same work, split.
//
// Per step it times, on rank 0, medians over `steps` steps after 3 warm-up steps:
//   step      forward + loss + backward + gradient reduction + AdamW (the whole step)
//   backward  the backward pass, with the buckets started and polled inside it
//   wait      reduce_gradients(): the reduction left after the backward pass
// once with the buckets started during the backward pass (overlap) and once all after it
// (no overlap: `wait` is then the whole reduction), and a blocking sum of the whole gradient
// buffer alone (MPI_Allreduce, no compute beside it). hidden = 1 - wait(overlap) /
// wait(no overlap): the share of the reduction the backward pass hid. The median wait also
// holds the ranks' skew (the slower rank's backward, on a loaded machine mostly that), so
// `hidden` is computed from the smallest wait of the steps (the best-aligned ones), and the
// medians are printed beside it.
//
//   dist_pretrain [steps] [bucket KiB]          (defaults: 20 steps, 1024 KiB)
#include <ctdl/ctdl.hpp>
#include <ctdl/dist/data_parallel.hpp>
#include <ctdl/dist/mpi.hpp>
#include <ctdl/models/gpt.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr std::size_t V = 96, Ctx = 64, global_batch = 16;
struct gpt : ctdl::models::gpt<V, Ctx, 128, 4, 4, 512> {};
using model = ctdl::model<gpt>;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

struct timing {
    double step = 0, backward = 0, wait = 0, min_wait = 0;
    std::size_t buckets = 0, early = 0, bytes = 0;
};

template <std::size_t B>
timing measure(ctdl::dist::mpi& comm, std::size_t steps, std::size_t bucket_bytes, bool overlap) {
    ctdl::dist::data_parallel<ctdl::dist::mpi> peers{comm, {.bucket_bytes = bucket_bytes, .overlap = overlap}};
    auto net = std::make_unique<model>(ctdl::seed{7});
    ctdl::optim::adamw opt{*net, {.lr = 1e-3f}};
    ctdl::rng data_rng(ctdl::seed{2});
    peers.share_state(*net, opt, data_rng);
    ctdl::tensor<int, ctdl::shape<B, Ctx>> x, y;
    ctdl::rng g(ctdl::seed{100 + static_cast<unsigned>(comm.rank())});
    for (std::size_t i = 0; i < B * Ctx; ++i) {
        x.data()[i] = static_cast<int>(g.next_below(V));
        y.data()[i] = static_cast<int>(g.next_below(V));
    }
    auto& acts = net->activations_for<ctdl::shape<B, Ctx>, int>();
    std::vector<double> step, backward, wait;
    for (std::size_t s = 0; s < steps + 3; ++s) {
        comm.barrier();  // the ranks start each step together
        const auto t0 = clock_type::now();
        const auto& logits = net->forward(x, acts);
        const double loss = ctdl::loss::cross_entropy.forward_backward(logits, y, acts.dout);
        peers.backward(*net, acts, x, acts.dout, false, true);
        peers.reduce_gradients();
        const double mean_loss = peers.sum(loss) / comm.size();
        opt.step(1.0f / static_cast<float>(comm.size()));
        const double t = seconds_since(t0);
        if (s < 3 || !(mean_loss > 0)) continue;
        step.push_back(t);
        backward.push_back(peers.last_reduction().backward_seconds);
        wait.push_back(peers.last_reduction().wait_seconds);
    }
    const auto& r = peers.last_reduction();
    return {median(step),     median(backward), median(wait), *std::min_element(wait.begin(), wait.end()),
            r.buckets,        r.started_during_backward,      r.bytes};
}

template <std::size_t B>
int run(ctdl::dist::mpi& comm, std::size_t steps, std::size_t bucket_bytes) {
    const timing with = measure<B>(comm, steps, bucket_bytes, true);
    const timing without = measure<B>(comm, steps, bucket_bytes, false);
    // The whole gradient buffer summed alone, blocking.
    std::vector<float> grads(model::gradient_count, 1.0f);
    std::vector<double> alone;
    for (std::size_t s = 0; s < steps + 3; ++s) {
        comm.barrier();
        const auto t0 = clock_type::now();
        auto r = comm.start_sum(grads.data(), grads.size());
        comm.wait(r);
        if (s >= 3) alone.push_back(seconds_since(t0));
    }
    if (comm.rank() != 0) return 0;
    const double tokens = global_batch * Ctx;
    std::printf("processes %d, threads %zu, batch %zu per process (%zu global), %zu parameters, %zu gradient bytes "
                "per step in %zu buckets of <= %zu KiB (%zu started during backward)\n",
                comm.size(), ctdl::cpu::threads(), B, global_batch, model::parameter_count, with.bytes, with.buckets,
                bucket_bytes / 1024, with.early);
    std::printf("overlap:    step %.2f ms, %.0f tokens/s; backward %.2f ms; wait after backward %.3f ms (min %.3f)\n",
                1e3 * with.step, tokens / with.step, 1e3 * with.backward, 1e3 * with.wait, 1e3 * with.min_wait);
    std::printf("no overlap: step %.2f ms, %.0f tokens/s; backward %.2f ms; wait after backward %.3f ms (min %.3f)\n",
                1e3 * without.step, tokens / without.step, 1e3 * without.backward, 1e3 * without.wait,
                1e3 * without.min_wait);
    std::printf("sum of the whole gradient buffer alone: %.3f ms (%.2f GB/s of gradient)\n", 1e3 * median(alone),
                with.bytes / median(alone) / 1e9);
    if (comm.size() > 1)
        std::printf("hidden behind backward: %.0f%% of the reduction (1 - min wait %.3f / %.3f ms)\n",
                    100 * (1 - with.min_wait / without.min_wait), 1e3 * with.min_wait, 1e3 * without.min_wait);
    std::printf("RESULT processes=%d threads=%zu tokens_per_s=%.0f tokens_per_s_no_overlap=%.0f bytes=%zu "
                "backward_ms=%.3f wait_ms=%.3f wait_no_overlap_ms=%.3f min_wait_ms=%.3f min_wait_no_overlap_ms=%.3f "
                "allreduce_alone_ms=%.3f step_ms=%.3f\n",
                comm.size(), ctdl::cpu::threads(), tokens / with.step, tokens / without.step, with.bytes,
                1e3 * with.backward, 1e3 * with.wait, 1e3 * without.wait, 1e3 * with.min_wait,
                1e3 * without.min_wait, 1e3 * median(alone), 1e3 * with.step);
    return 0;
}

}  // namespace

int main(int argc, char** argv) try {
    const std::size_t steps = argc > 1 ? std::stoul(argv[1]) : 20;
    const std::size_t bucket_kib = argc > 2 ? std::stoul(argv[2]) : 1024;
    ctdl::dist::mpi comm;
    switch (comm.size()) {
        case 1: return run<16>(comm, steps, bucket_kib * 1024);
        case 2: return run<8>(comm, steps, bucket_kib * 1024);
        case 4: return run<4>(comm, steps, bucket_kib * 1024);
        default: std::fprintf(stderr, "dist_pretrain: run on 1, 2 or 4 processes\n"); return 2;
    }
} catch (const std::exception& e) {
    std::fprintf(stderr, "dist_pretrain: %s\n", e.what());
    return 2;
}
