// The MLP 784-256-256-10 on the GPU (ctdl::device on CUDA), float32: benchmarks/bench_mlp.cpp's
// cases on model<mlp, ctdl::device>; benchmarks/peers/torch_mlp_gpu.py does the same work in
// PyTorch on CUDA, and scripts/gpu-check prints both side by side.
//
// Names: <case>/batch:<B>/real_time, wall time per iteration; items_per_second = samples/s.
//   train   one ctdl::train_step: forward + fused softmax cross-entropy (mean) + backward +
//           SGD (lr 0.01, no momentum); it returns the loss, so every step ends synchronized
//   infer   model<frozen<mlp>, device>::forward(x, y) into a preallocated y, then
//           cudaDeviceSynchronize
// Inputs and labels are made on the host and moved once with ctdl::to<ctdl::device>.
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>
#include <ctdl/core/transfer.hpp>
#include <ctdl/exec/device.hpp>

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>

namespace {

namespace nn = ctdl::nn;
using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

template <std::size_t B>
void fill_batch(ctdl::tensor<float, ctdl::shape<B, 784>>& x, ctdl::tensor<int, ctdl::shape<B>>* y) {
    std::mt19937 g(1234);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    std::uniform_int_distribution<int> label(0, 9);
    for (std::size_t i = 0; i < B; ++i) {
        for (std::size_t j = 0; j < 784; ++j) x(i, j) = u(g);
        if (y) (*y)(i) = label(g);
    }
}

template <std::size_t B>
void bm_train(benchmark::State& st) {
    ctdl::model<mlp, ctdl::device> net{ctdl::seed{7}};
    ctdl::optim::sgd opt{net, {.lr = 0.01f}};
    ctdl::tensor<float, ctdl::shape<B, 784>> xh;
    ctdl::tensor<int, ctdl::shape<B>> yh;
    fill_batch<B>(xh, &yh);
    const auto x = ctdl::to<ctdl::device>(xh);
    const auto y = ctdl::to<ctdl::device>(yh);
    float loss = 0;
    for (int i = 0; i < 10; ++i) loss += ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);  // warm-up
    for (auto _ : st) {
        loss = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
        benchmark::DoNotOptimize(loss);
    }
    st.counters["loss"] = loss;
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(B));
}

template <std::size_t B>
void bm_infer(benchmark::State& st) {
    ctdl::model<ctdl::frozen<mlp>, ctdl::device> net = ctdl::freeze(ctdl::model<mlp, ctdl::device>{ctdl::seed{7}});
    ctdl::tensor<float, ctdl::shape<B, 784>> xh;
    fill_batch<B>(xh, nullptr);
    const auto x = ctdl::to<ctdl::device>(xh);
    ctdl::tensor<float, ctdl::shape<B, 10>, ctdl::device> out;
    for (int i = 0; i < 10; ++i) net.forward(x, out);  // warm-up: activations, cuBLASLt plans
    cudaDeviceSynchronize();
    for (auto _ : st) {
        net.forward(x, out);
        cudaDeviceSynchronize();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(B));
}

template <std::size_t B>
void add(const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)
        ->ArgName("batch")
        ->Arg(static_cast<std::int64_t>(B))
        ->UseRealTime()
        ->MinTime(0.3)
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::fprintf(stderr, "bench_device_mlp: no CUDA device\n");
        return 77;
    }
    add<64>("train", &bm_train<64>);
    add<256>("train", &bm_train<256>);
    add<1>("infer", &bm_infer<1>);
    add<64>("infer", &bm_infer<64>);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
