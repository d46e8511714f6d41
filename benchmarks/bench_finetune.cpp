// A fine-tuning step, float32, LoRA against full fine-tuning, for comparison with PyTorch +
// peft (benchmarks/peers/peft_step.py does the same work; benchmarks/run_finetune.sh runs both
// and prints the table).
//
// Models (random weights: the step's cost does not depend on their values):
//   pretrain  examples::pretrain_gpt = models::gpt<1024, 64, 128, 4, 4, 512> (the params
//             counter), batch 16 × 64 tokens (ids drawn from the first 96: its corpus's alphabet); LoRA targets "qkv", "proj" (every block's attention projections)
//   gpt2      models::gpt2<50257, 1024, 768, 12, 12> (GPT-2 small's shape, 124 M parameters, tied
//             head), batch 1 × 256 tokens; LoRA targets "attn.c_attn", "attn.c_proj"
// LoRA: ctdl::with_lora<G, lora::config<8, 16>, targets...>: rank 8, alpha 16, no dropout; every
// other parameter frozen (peft's get_peft_model). Full: model<G>, every parameter trains.
// Step:  one ctdl::train_step with ctdl::optim::adamw (lr 1e-4, betas 0.9/0.999, eps 1e-8, weight
//        decay 0.01: PyTorch's defaults but lr): forward (activations kept), fused softmax
//        cross-entropy (mean over B·T rows), backward, AdamW update.
// Data:  token ids and targets [B, T], uniform in [0, Ids), fixed seed.
//
// Names: finetune/<model>_<lora|full>/threads:<t>/real_time, time per step (wall clock). Counters:
//   tok_s          B·T / step time
//   grad_bytes     the model's own gradient buffer: model::gradient_bytes() (0 when every step's
//                  gradients lived in the step's dL/dlogits buffer: model::backward_step)
//   grad_in_dout_bytes  gradients kept in that buffer instead (gradient_count · 4, or 0)
//   dout_bytes     the dL/dlogits buffer itself (B·T·Vocab · 4: activation storage, both sides have it)
//   state_bytes    optimizer state: the sizes of opt.state_tensors() (exp_avg, exp_avg_sq) · 4
//   adapter_bytes  the adapters' own parameters (lora_A, lora_B) · 4 (0 for full fine-tuning)
//   state_count    the optimizer's state tensors per trainable parameter (2 for AdamW)
//   params         parameters of the model (frozen ones too)
// Threads are ctdl::cpu::set_threads(t).
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>
#include <ctdl/io/lora_adapter.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/nn/lora.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <random>
#include <thread>

#include "../examples/pretrain/model.hpp"

namespace {

using lora8 = ctdl::lora::config<8, 16>;

using pretrain = examples::pretrain_gpt;
using pretrain_lora = ctdl::with_lora<pretrain, lora8, "qkv", "proj">;
using gpt2 = ctdl::models::gpt2<50257, 1024, 768, 12, 12>;
using gpt2_lora = ctdl::with_lora<gpt2, lora8, "attn.c_attn", "attn.c_proj">;

// Exactly the attention projections are adapted: rank 8 × (In + Out) per projection, 2 per block.
static_assert(ctdl::model<pretrain_lora>::gradient_count == 4 * 8 * ((128 + 3 * 128) + (128 + 128)));
static_assert(ctdl::model<gpt2_lora>::gradient_count == 12 * 8 * ((768 + 3 * 768) + (768 + 768)));

void threads(std::size_t t) {
    if (ctdl::cpu::threads() != t) {
        ctdl::cpu::set_threads(t);
        // Let the new workers start and settle before timing.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

template <class A, std::size_t Ids, std::size_t B, std::size_t T>
void bm_step(benchmark::State& st) {
    threads(static_cast<std::size_t>(st.range(0)));
    using M = ctdl::model<A>;
    auto net = std::make_unique<M>(ctdl::seed{7});
    ctdl::optim::adamw opt{*net, {.lr = 1e-4f}};
    auto x = std::make_unique<ctdl::tensor<int, ctdl::shape<B, T>>>();
    auto y = std::make_unique<ctdl::tensor<int, ctdl::shape<B, T>>>();
    std::mt19937 g(1234);
    std::uniform_int_distribution<int> id(0, static_cast<int>(Ids) - 1);
    for (std::size_t i = 0; i < B * T; ++i) {
        x->data()[i] = id(g);
        y->data()[i] = id(g);
    }
    float loss = 0;
    for (int i = 0; i < 2; ++i) loss = ctdl::train_step(*net, opt, ctdl::loss::cross_entropy, *x, *y);  // warm-up
    double seconds = 0;
    for (auto _ : st) {
        const auto t0 = std::chrono::steady_clock::now();
        loss = ctdl::train_step(*net, opt, ctdl::loss::cross_entropy, *x, *y);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
        seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::size_t state = 0, state_count = 0, adapter = 0;
    for (const auto& s : opt.state_tensors()) {
        state += s.values.size() * sizeof(float);
        ++state_count;
    }
    for (const auto& p : M::parameter_table())
        if (ctdl::lora::is_adapter_parameter(p.name)) adapter += p.size * sizeof(float);
    st.counters["tok_s"] = double(st.iterations()) * double(B * T) / seconds;
    const std::size_t own = net->gradient_bytes();
    st.counters["grad_bytes"] = double(own);
    st.counters["grad_in_dout_bytes"] = own ? 0.0 : double(M::gradient_count * sizeof(float));
    st.counters["dout_bytes"] = double(ctdl::output_shape<A, ctdl::shape<B, T>>::size * sizeof(float));
    st.counters["state_bytes"] = double(state);
    st.counters["adapter_bytes"] = double(adapter);
    st.counters["state_count"] = double(state_count);
    st.counters["params"] = double(M::parameter_count);
    // The copies of frozen weights the step's GEMMs read (ops/linear/frozen_packs.hpp).
    st.counters["pack_bytes"] = double(net->template activations_for<ctdl::shape<B, T>, int>().packs.size() * sizeof(float));
    st.counters["loss"] = loss;
}

}  // namespace

int main(int argc, char** argv) {
    const auto reg = [](const char* name, auto* fn, int iterations) {
        auto* b = benchmark::RegisterBenchmark(name, fn)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(
            benchmark::kMillisecond);
        if (iterations > 0) b->Iterations(iterations);
    };
    reg("finetune/pretrain_lora", &bm_step<pretrain_lora, 96, 16, 64>, 0);
    reg("finetune/pretrain_full", &bm_step<pretrain, 96, 16, 64>, 0);
    reg("finetune/gpt2_lora", &bm_step<gpt2_lora, 50257, 1, 256>, 3);
    reg("finetune/gpt2_full", &bm_step<gpt2, 50257, 1, 256>, 3);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
