// The MLP 784-256-256-10 (Linear, ReLU, Linear, ReLU, Linear), float32: a training step and
// frozen inference, for comparison with PyTorch (benchmarks/peers/torch_mlp.py does the same
// work; benchmarks/run_mlp.sh runs both and prints the table).
//
// Names: <case>/batch:<B>/threads:<t>/real_time, time per iteration (wall clock: with two
// threads the pool's worker runs beside the timed thread), items_per_second = samples/s.
//   train   one ctdl::train_step: forward (activations kept) + fused softmax cross-entropy
//           (mean) + backward + SGD update (lr 0.01, no momentum)   — batches 64 and 256
//   infer   model<frozen<mlp>>::forward(x, y) into a preallocated y — batches 1 and 64
// Threads are ctdl::cpu::set_threads(t). Inputs are uniform in [0, 1), labels uniform in [0, 10).
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>

#include <chrono>
#include <cstddef>
#include <random>
#include <thread>

namespace {

namespace nn = ctdl::nn;
using mlp = nn::sequential<nn::linear<784, 256>, nn::relu,
                           nn::linear<256, 256>, nn::relu,
                           nn::linear<256, 10>>;

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

void use_threads(benchmark::State& st) {
    const auto t = static_cast<std::size_t>(st.range(1));
    if (ctdl::cpu::threads() != t) {
        ctdl::cpu::set_threads(t);
        // Let the new workers start and settle before timing.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

template <std::size_t B>
void bm_train(benchmark::State& st) {
    if (static_cast<std::size_t>(st.range(0)) != B) {
        st.SkipWithError("batch argument does not match the compiled batch");
        return;
    }
    use_threads(st);
    ctdl::model<mlp> net{ctdl::seed{7}};
    ctdl::optim::sgd opt{net, {.lr = 0.01f}};
    ctdl::tensor<float, ctdl::shape<B, 784>> x;
    ctdl::tensor<int, ctdl::shape<B>> y;
    fill_batch<B>(x, &y);
    float loss = 0;
    for (int i = 0; i < 3; ++i) loss += ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);  // warm-up
    for (auto _ : st) {
        loss = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    st.counters["loss"] = loss;
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(B));
}

template <std::size_t B>
void bm_infer(benchmark::State& st) {
    if (static_cast<std::size_t>(st.range(0)) != B) {
        st.SkipWithError("batch argument does not match the compiled batch");
        return;
    }
    use_threads(st);
    ctdl::model<ctdl::frozen<mlp>> net = ctdl::freeze(ctdl::model<mlp>{ctdl::seed{7}});
    ctdl::tensor<float, ctdl::shape<B, 784>> x;
    ctdl::tensor<float, ctdl::shape<B, 10>> out;
    fill_batch<B>(x, nullptr);
    for (int i = 0; i < 3; ++i) net.forward(x, out);  // warm-up: makes the activations
    for (auto _ : st) {
        net.forward(x, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(B));
}

template <std::size_t B>
void add(const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)
        ->ArgNames({"batch", "threads"})
        ->Args({static_cast<std::int64_t>(B), 1})
        ->Args({static_cast<std::int64_t>(B), 2})
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace

int main(int argc, char** argv) {
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
