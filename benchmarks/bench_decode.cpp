// Batch-1 generation through a KV-cache decoding session (infer/decoder.hpp), float32 and
// with the weights in bf16 (infer::bf16_decoder), for comparison with transformers' generate
// (benchmarks/peers/hf_decode.py; benchmarks/run_decode.sh runs both and prints the tables).
//
// Models (random weights, greedy):
//   small  models::gpt<96, 160, 128, 4, 4, 512>: the pretraining example's width and depth, context 160
//   gpt2   models::gpt2<50257, 1024, 768, 12, 12>: GPT-2 small's shape (124 M parameters, tied head)
// One iteration: reset, prefill 32 tokens (the first new token from its logits), then 127
// decoding steps: 128 new tokens. The _batch8 cases run 8 sequences in one session (8
// prefills, then steps of 8 rows): decode_tok_s counts the tokens of all 8. The _bf16 cases
// are the same sessions with bf16 weights. Counters: decode_tok_s (the 127 steps), prefill_ms,
// weight_mb (bytes of weights one step reads: every parameter but the position table, the
// packed ones at the session's width), packs_mb (the session's packed weights).
// A bf16 case also states its top-1 agreement with the float32 session over the same model,
// in the same run: top1_agree, the fraction of the 128 new positions at which the bf16
// session's argmax equals float32's greedy token when both are fed float32's greedy sequence
// (teacher-forced); same_prefix, how many of the 128 tokens bf16's own greedy generation
// gives before it first differs from float32's.
// Also read_bw: the machine's read bandwidth in the same run (sum of a 1 GiB float buffer,
// 1 and 2 threads), so decode can be set against its bound (weights per token / bandwidth).
//
//   bench_decode --session-memory small|gpt2 f32|bf16
// instead prints, as one JSON line, the resident memory (VmRSS) the model and then a batch-1
// session added in this fresh process (the session's after a prefill of 32 tokens and 127
// steps: its packs, KV cache and buffers), and the session's packed bytes.
#include <benchmark/benchmark.h>
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>
#include <ctdl/models/gpt.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/exec/page_buffer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstddef>
#include <fstream>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
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

/// Resident memory of the process (VmRSS, bytes).
double resident_bytes() {
    std::ifstream in("/proc/self/status");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("VmRSS:", 0) == 0) return 1024.0 * std::stod(line.substr(6));
    return 0;
}

int argmax(std::span<const float> logits) {
    return static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

/// Top-1 agreement of session dec (bf16) with a float32 session over the same model: float32's
/// greedy sequence (prompt, 128 new tokens); then, fed that sequence, the positions at which
/// dec's argmax is float32's token; and the new tokens of dec's own greedy run before the first
/// that differs.
template <class M, class D>
void agreement(benchmark::State& st, const M& net, D& dec, const std::vector<int>& prompt) {
    auto ref = std::make_unique<ctdl::infer::decoder<M, D::batch>>(net);
    ctdl::rng g{ctdl::seed{1}};
    const ctdl::infer::generation greedy{.max_new_tokens = new_tokens};
    const auto f32 = ctdl::infer::generate(*ref, prompt, greedy, g);
    ref.reset();
    dec.reset();
    std::size_t agree = 0;
    int pick = argmax(dec.prefill(0, prompt));
    for (std::size_t k = 0; k < new_tokens; ++k) {
        agree += pick == f32[prompt_len + k];
        if (k + 1 < new_tokens) pick = argmax(dec.append(0, f32[prompt_len + k]));
    }
    const auto own = ctdl::infer::generate(dec, prompt, greedy, g);
    std::size_t same = 0;
    while (same < new_tokens && own[prompt_len + same] == f32[prompt_len + same]) ++same;
    st.counters["top1_agree"] = double(agree) / double(new_tokens);
    st.counters["same_prefix"] = double(same);
}

template <class G, std::size_t PositionParams, std::size_t Batch = 1, class W = float>
void bm_decode(benchmark::State& st) {
    threads(static_cast<std::size_t>(st.range(0)));
    using M = ctdl::model<ctdl::frozen<G>>;
    auto net = std::make_unique<M>(ctdl::freeze(ctdl::model<G>{ctdl::seed{1}}));
    using D = ctdl::infer::decoder<M, Batch, ctdl::infer::context_length<G>,
                                   (Batch > ctdl::infer::default_pass_rows ? Batch : ctdl::infer::default_pass_rows), W>;
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
    // Bytes one step reads: the packed weights at their width, every other parameter but the
    // position table as float (the token table too, of which a step gathers one row).
    const double packed = double(dec->packed_bytes());
    st.counters["weight_mb"] =
        (double(M::parameter_count - PositionParams) - packed / sizeof(W)) * sizeof(float) / 1e6 + packed / 1e6;
    st.counters["packs_mb"] = packed / 1e6;
    if constexpr (Batch == 1 && !std::is_same_v<W, float>) {
        prompt[0] = 0;
        agreement(st, *net, *dec, prompt);
    }
}

/// --session-memory: the resident memory a model and then its batch-1 session add (MB).
template <class G, class W>
int session_memory(const char* model, const char* weights) {
    using M = ctdl::model<ctdl::frozen<G>>;
    const double r0 = resident_bytes();
    auto net = std::make_unique<M>(ctdl::freeze(ctdl::model<G>{ctdl::seed{1}}));
    const double r1 = resident_bytes();
    auto dec = std::make_unique<ctdl::infer::decoder<M, 1, ctdl::infer::context_length<G>,
                                                     ctdl::infer::default_pass_rows, W>>(*net);
    std::vector<int> prompt(prompt_len);
    for (std::size_t i = 0; i < prompt_len; ++i) prompt[i] = static_cast<int>((i * 13 + 5) % 96);
    int next = argmax(dec->prefill(0, prompt));
    for (std::size_t k = 1; k < new_tokens; ++k) next = argmax(dec->append(0, next));
    const double r2 = resident_bytes();
    std::printf("{\"model\": \"%s\", \"weights\": \"%s\", \"model_mb\": %.1f, \"session_mb\": %.1f, "
                "\"packs_mb\": %.1f, \"last_token\": %d}\n",
                model, weights, (r1 - r0) / 1e6, (r2 - r1) / 1e6, double(dec->packed_bytes()) / 1e6, next);
    return 0;
}

/// Read bandwidth: the sum of a 1 GiB buffer (in 2 MiB pages where the kernel gives them),
/// each thread reading one contiguous share of it as one stream (the decoding GEMM's static
/// split of a weight matrix's columns) into 4 × 16 float lanes, prefetching 4 KiB ahead as
/// that GEMM does (GB/s). Without the prefetch this read 20-32 GB/s here, below what decoding
/// itself reached. The machine is shared: its 2-thread read rate moved between 36 and 84
/// GB/s within minutes here, so run_decode.sh measures it before and after the decoding
/// runs and sets decoding against the higher.
void bm_read(benchmark::State& st) {
    threads(static_cast<std::size_t>(st.range(0)));
    constexpr std::size_t n = std::size_t{1} << 28;
    static ctdl::page_buffer<float> buf(n);
    static const bool filled = [] {
        std::fill(buf.data(), buf.data() + n, 1.0f);
        return true;
    }();
    (void)filled;
    const std::size_t parts = ctdl::cpu_pool().size();
    std::vector<float> sums(parts);
    for (auto _ : st) {
        ctdl::cpu_pool().run([&](std::size_t t, std::size_t m) {
            const std::size_t b0 = n / 64 * t / m * 64, b1 = n / 64 * (t + 1) / m * 64;
            const float* p = buf.data();
            float acc[4][16] = {};
            for (std::size_t i = b0; i < b1; i += 64) {
                __builtin_prefetch(p + i + 1024);
                for (std::size_t q = 0; q < 4; ++q)
                    for (int j = 0; j < 16; ++j) acc[q][j] += p[i + 16 * q + j];
            }
            float a = 0;
            for (const auto& row : acc)
                for (float v : row) a += v;
            sums[t] = a;
        });
        benchmark::DoNotOptimize(sums.data());
    }
    st.counters["read_gb_s"] = benchmark::Counter(double(n * sizeof(float)) * double(st.iterations()) / 1e9,
                                                  benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 4 && std::string(argv[1]) == "--session-memory") {
        const std::string m = argv[2], w = argv[3];
        if (m == "small" && w == "f32") return session_memory<small, float>(argv[2], argv[3]);
        if (m == "small" && w == "bf16") return session_memory<small, ctdl::bf16>(argv[2], argv[3]);
        if (m == "gpt2" && w == "f32") return session_memory<gpt2, float>(argv[2], argv[3]);
        if (m == "gpt2" && w == "bf16") return session_memory<gpt2, ctdl::bf16>(argv[2], argv[3]);
        std::fprintf(stderr, "bench_decode --session-memory: small|gpt2 f32|bf16, not '%s %s'\n", argv[2], argv[3]);
        return 2;
    }
    for (const char* name : {"read_bw"})
        benchmark::RegisterBenchmark(name, &bm_read)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
    // Float32 and bf16 weights, batch 1 and batch 8 (8 sequences, one step for all of them:
    // tokens/s over the 8); each bf16 case right after the float32 one at the same thread
    // count, so that the pair whose ratio is printed shares the machine's state.
    const auto reg = [](const char* name, auto fn, int threads, int iterations) {
        auto* b = benchmark::RegisterBenchmark(name, fn)->ArgName("threads")->Arg(threads)->UseRealTime()->Unit(
            benchmark::kMillisecond);
        if (iterations) b->Iterations(iterations);
    };
    using ctdl::bf16;
    for (const int t : {1, 2}) {
        reg("decode/small", &bm_decode<small, 160 * 128>, t, 0);
        reg("decode/small_bf16", &bm_decode<small, 160 * 128, 1, bf16>, t, 0);
    }
    for (const int t : {1, 2}) {
        reg("decode/gpt2", &bm_decode<gpt2, 1024 * 768>, t, 2);
        reg("decode/gpt2_bf16", &bm_decode<gpt2, 1024 * 768, 1, bf16>, t, 2);
    }
    for (const int t : {1, 2}) {
        reg("decode/small_batch8", &bm_decode<small, 160 * 128, 8>, t, 0);
        reg("decode/small_bf16_batch8", &bm_decode<small, 160 * 128, 8, bf16>, t, 0);
    }
    for (const int t : {1, 2}) {
        reg("decode/gpt2_batch8", &bm_decode<gpt2, 1024 * 768, 8>, t, 1);
        reg("decode/gpt2_bf16_batch8", &bm_decode<gpt2, 1024 * 768, 8, bf16>, t, 1);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
