// dist::nccl (dist/nccl.hpp) with the device policy on CUDA, built by nvcc. Without a GPU
// it exits with 77 (ctest: skipped). With one, a one-rank NCCL communicator (dist::single
// as its host) runs every part end to end: the broadcast of parameters and optimizer state,
// the gradient buckets summed while the backward pass runs, waits; 10 training steps must
// give the same bits as train::run without peers (a sum over one rank is its values), with
// every bucket started. Where MPI is found, nccl<dist::mpi> is compiled too.
#include <ctdl/ctdl.hpp>
#include <ctdl/dist/data_parallel.hpp>
#include <ctdl/dist/nccl.hpp>
#include <ctdl/exec/device.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/train/loop.hpp>
#if CTDL_TEST_WITH_MPI
#include <ctdl/dist/mpi.hpp>
template class ctdl::dist::nccl<ctdl::dist::mpi>;  // every member compiles against MPI
#endif

#include <cuda_runtime_api.h>

#include <cstdio>
#include <vector>

namespace {

constexpr std::size_t V = 32, T = 16, B = 8;
struct net_type : ctdl::models::gpt<V, T, 32, 2, 2, 64> {};
using model = ctdl::model<net_type, ctdl::device>;

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

template <class Peers>
std::vector<float> train(Peers* peers) {
    const auto ds = make_data();
    model net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.lr = 3e-3f, .weight_decay = 1e-2f}};
    ctdl::rng data_rng(ctdl::seed{2});
    ctdl::train::options o;
    o.steps = 10;
    o.warmup_steps = 2;
    o.eval_every = 5;
    o.eval_batches = 2;
    o.progress = false;
    if (peers) ctdl::train::run<B, T>(net, opt, ds, data_rng, o, *peers);
    else ctdl::train::run<B, T>(net, opt, ds, data_rng, o);
    std::vector<float> w(model::parameter_count);
    ctdl::device::copy_to_host(net.parameters(), w.data(), w.size());
    return w;
}

}  // namespace

int main() try {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::printf("no CUDA device: skipped\n");
        return 77;
    }
    ctdl::dist::single host;
    ctdl::dist::nccl<ctdl::dist::single> comm{host};
    ctdl::dist::data_parallel<ctdl::dist::nccl<ctdl::dist::single>> peers{comm, {.bucket_bytes = 4096}};
    const auto with = train(&peers);
    const auto without = train(static_cast<ctdl::train::one_process*>(nullptr));
    const auto& stats = peers.last_reduction();
    std::printf("nccl, one rank on device %d: %zu buckets (%zu started during backward), %zu bytes per step; "
                "weights %s the run without peers\n",
                comm.device(), stats.buckets, stats.started_during_backward, stats.bytes,
                with == without ? "bitwise equal to" : "DIFFERENT from");
    const bool ok = with == without && stats.buckets > 2 && stats.started_during_backward > 0 &&
                    stats.bytes == model::gradient_count * sizeof(float);
    if (!ok) std::printf("FAILED\n");
    return ok ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dist_nccl: %s\n", e.what());
    return 2;
}
