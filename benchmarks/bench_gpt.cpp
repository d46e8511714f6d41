// A GPT training step, float32, for comparison with PyTorch (benchmarks/peers/torch_gpt.py does
// the same work; benchmarks/run_gpt.sh runs both and prints the table).
//
// Model: ctdl::models::gpt<96, 64, 128, 4, 4, 512> (vocab 96, context 64, width 128, 4 heads,
// 4 pre-norm blocks, MLP 512, untied LM head), ≈ 0.83 M parameters.
// Step:  one ctdl::train_step with ctdl::optim::adamw (lr 1e-3, betas 0.9/0.999, eps 1e-8,
//        weight decay 0.01, PyTorch's defaults): forward (activations kept), fused softmax
//        cross-entropy (mean over B·T rows), backward, AdamW update.
// Data:  token ids [16, 64] and targets [16, 64], uniform in [0, 96), fixed seed.
//
// Names: train/batch:16/threads:<t>/real_time, time per step (wall clock), items_per_second =
// tokens/s (B·T = 1024 tokens per step). Threads are ctdl::cpu::set_threads(t).
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <random>
#include <thread>

namespace {

constexpr std::size_t V = 96, Ctx = 64, D = 128, Heads = 4, Layers = 4, Mlp = 512, B = 16, T = Ctx;
using G = ctdl::models::gpt<V, Ctx, D, Heads, Layers, Mlp>;

void bm_train(benchmark::State& st) {
    const auto t = static_cast<std::size_t>(st.range(1));
    if (ctdl::cpu::threads() != t) {
        ctdl::cpu::set_threads(t);
        // Let the new workers start and settle before timing.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto net = std::make_unique<ctdl::model<G>>(ctdl::seed{7});
    ctdl::optim::adamw opt{*net, {.lr = 1e-3f}};
    auto x = std::make_unique<ctdl::tensor<int, ctdl::shape<B, T>>>();
    auto y = std::make_unique<ctdl::tensor<int, ctdl::shape<B, T>>>();
    std::mt19937 g(1234);
    std::uniform_int_distribution<int> id(0, static_cast<int>(V) - 1);
    for (std::size_t i = 0; i < B * T; ++i) {
        x->data()[i] = id(g);
        y->data()[i] = id(g);
    }
    float loss = 0;
    for (int i = 0; i < 3; ++i) loss = ctdl::train_step(*net, opt, ctdl::loss::cross_entropy, *x, *y);  // warm-up
    for (auto _ : st) {
        loss = ctdl::train_step(*net, opt, ctdl::loss::cross_entropy, *x, *y);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    st.counters["loss"] = loss;
    st.SetItemsProcessed(static_cast<std::int64_t>(st.iterations()) * static_cast<std::int64_t>(B * T));
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("train", &bm_train)
        ->ArgNames({"batch", "threads"})
        ->Args({static_cast<std::int64_t>(B), 1})
        ->Args({static_cast<std::int64_t>(B), 2})
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
