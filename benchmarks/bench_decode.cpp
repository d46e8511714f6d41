// Batch-1 generation through a KV-cache decoding session (infer/decoder.hpp), float32, for
// comparison with transformers' generate (benchmarks/peers/hf_decode.py; benchmarks/
// run_decode.sh runs both and prints the table).
//
// Models (random weights, greedy):
//   small  models::gpt<96, 160, 128, 4, 4, 512>: the pretraining example's width and depth, context 160
//   gpt2   models::gpt2<50257, 1024, 768, 12, 12>: GPT-2 small's shape (124 M parameters, tied head)
// One iteration: reset, prefill 32 tokens (the first new token from its logits), then 127
// decoding steps: 128 new tokens. The _batch8 cases run 8 sequences in one session (8
// prefills, then steps of 8 rows): decode_tok_s counts the tokens of all 8. Counters: decode_tok_s (the 127 steps), prefill_ms,
// weight_mb (bytes of weights one step reads: every parameter but the position table).
// Also read_bw: the machine's read bandwidth in the same run (sum of a 1 GiB float buffer,
// 1 and 2 threads), so decode can be set against its bound (weights per token / bandwidth).
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/exec/page_buffer.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

namespace {

using small = ctdl::models::gpt<96, 160, 128, 4, 4, 512>;
using gpt2 = ctdl::models::gpt2<50257, 1024, 768, 12, 12>;
constexpr std::size_t prompt_len = 32, new_tokens = 128;

void threads(std::size_t t) {
    if (ctdl::cpu::threads() != t) {
        ctdl::cpu::set_threads(t);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

template <class G, std::size_t PositionParams, std::size_t Batch = 1>
void bm_decode(benchmark::State& st) {
    threads(static_cast<std::size_t>(st.range(0)));
    using M = ctdl::model<ctdl::frozen<G>>;
    auto net = std::make_unique<M>(ctdl::freeze(ctdl::model<G>{ctdl::seed{1}}));
    using D = ctdl::infer::decoder<M, Batch>;
    auto dec = std::make_unique<D>(*net);
    ctdl::infer::sampler pick{D::vocab};
    ctdl::rng g{ctdl::seed{1}};
    std::vector<int> prompt(prompt_len);
    for (std::size_t i = 0; i < prompt_len; ++i) prompt[i] = static_cast<int>((i * 13 + 5) % 96);
    double prefill_s = 0, decode_s = 0;
    std::vector<int> next(Batch);
    const auto once = [&] {
        dec->reset();
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t b = 0; b < Batch; ++b) {
            prompt[0] = static_cast<int>(b);  // B different prompts
            next[b] = pick(dec->prefill(b, prompt), {.temperature = 0}, g);
        }
        const auto t1 = std::chrono::steady_clock::now();
        for (std::size_t k = 1; k < new_tokens; ++k) {
            dec->step(next);
            for (std::size_t b = 0; b < Batch; ++b) next[b] = pick(dec->logits(b), {.temperature = 0}, g);
        }
        const auto t2 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(next.data());
        return std::pair{std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count()};
    };
    once();  // warm-up: packs the weights, touches the cache
    std::size_t n = 0;
    for (auto _ : st) {
        const auto [p, d] = once();
        prefill_s += p;
        decode_s += d;
        ++n;
    }
    st.counters["decode_tok_s"] = double(n * Batch * (new_tokens - 1)) / decode_s;
    st.counters["prefill_ms"] = 1e3 * prefill_s / double(n);
    st.counters["weight_mb"] = double((M::parameter_count - PositionParams) * sizeof(float)) / 1e6;
}

/// Read bandwidth: the sum of a 1 GiB buffer (in 2 MiB pages where the kernel gives them),
/// split over the threads; each task reads its block as one stream into 4 × 16 float lanes,
/// prefetching 4 KiB ahead as the decoding GEMM does (without the prefetch this read
/// 20-32 GB/s here, below what decoding itself reached) (GB/s).
void bm_read(benchmark::State& st) {
    threads(static_cast<std::size_t>(st.range(0)));
    constexpr std::size_t n = std::size_t{1} << 28, block = 1 << 16;
    static ctdl::page_buffer<float> buf(n);
    static const bool filled = [] {
        std::fill(buf.data(), buf.data() + n, 1.0f);
        return true;
    }();
    (void)filled;
    for (auto _ : st) {
        const double s = ctdl::cpu::sum(n / block, [&](std::size_t b) {
            const float* p = buf.data() + b * block;
            float acc[4][16] = {};
            for (std::size_t i = 0; i < block; i += 64) {
                __builtin_prefetch(p + i + 1024);
                for (std::size_t q = 0; q < 4; ++q)
                    for (int j = 0; j < 16; ++j) acc[q][j] += p[i + 16 * q + j];
            }
            float a = 0;
            for (const auto& row : acc)
                for (float v : row) a += v;
            return a;
        }, block);
        benchmark::DoNotOptimize(s);
    }
    st.counters["read_gb_s"] = benchmark::Counter(double(n * sizeof(float)) * double(st.iterations()) / 1e9,
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
    for (const char* name : {"read_bw"})
        benchmark::RegisterBenchmark(name, &bm_read)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("decode/small", &bm_decode<small, 160 * 128>)
        ->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("decode/gpt2", &bm_decode<gpt2, 1024 * 768>)
        ->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(2);
    // Batched generation: 8 sequences, one step for all of them (tokens/s over the 8).
    benchmark::RegisterBenchmark("decode/small_batch8", &bm_decode<small, 160 * 128, 8>)
        ->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("decode/gpt2_batch8", &bm_decode<gpt2, 1024 * 768, 8>)
        ->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
