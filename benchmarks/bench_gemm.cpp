// The cpu GEMM against OpenBLAS (cblas_sgemm, same row-major layout), float.
//
// Names: gemm/<lib>/<form>/<M>x<N>x<K>/threads:<t>, counter GFLOPS = 2·M·N·K per second.
// Forms: nn (C = A·B), nt (Y = X·Wᵀ), tn (dW = dYᵀ·X). Square sizes run the nn form; each
// linear-layer shape (batch 64, in → out) runs its three products:
//   forward  Y  = X·Wᵀ   nt  M = batch, N = out, K = in
//   dX       dX = dY·W   nn  M = batch, N = in,  K = out
//   dW       dW = dYᵀ·X  tn  M = out,   N = in,  K = batch
// and the batch-1 forward (M = 1) of the two large layers.
// The two libraries run back to back for each shape (the machine's load drifts; ratios of
// neighbours are what to read). Before a 2-thread ctdl run the benchmark sleeps until
// OpenBLAS's workers have stopped spinning, so they do not compete with ctdl's.
#include <benchmark/benchmark.h>
#include <ctdl/exec/aligned_buffer.hpp>
#include <ctdl/exec/cpu/gemm.hpp>

#include <chrono>
#include <cstddef>
#include <thread>
#include <random>
#include <string>
#include <vector>

#ifdef CTDL_BENCH_OPENBLAS
#include <cblas.h>
#endif

namespace {

using ctdl::trans;

struct job {
    const char* form;
    trans ta, tb;
    std::size_t m, n, k;
};

// Operands are 64-byte aligned for both libraries, as every ctdl tensor is (a std::vector's
// 16-byte alignment splits every 64-byte load of an unpacked operand across two cache lines:
// measured -20% on the dot-product paths; OpenBLAS packs and does not care).
ctdl::aligned_buffer<float> random_vector(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> d(-1, 1);
    ctdl::aligned_buffer<float> v(n);
    for (std::size_t i = 0; i < n; ++i) v.data()[i] = d(g);
    return v;
}

ctdl::thread_pool& pool_of(std::size_t threads) {
    static ctdl::thread_pool p1(1), p2(2);
    return threads == 1 ? p1 : p2;
}

template <trans TA, trans TB>
void run_ctdl(const job& j, const float* a, const float* b, float* c, ctdl::thread_pool& pool) {
    const std::size_t lda = TA == trans::n ? j.k : j.m, ldb = TB == trans::n ? j.n : j.k;
    ctdl::cpu_kernels::gemm<TA, TB, float>(j.m, j.n, j.k, a, lda, b, ldb, c, j.n, false, ctdl::epilogue::none{}, pool);
}

void bench_ctdl(benchmark::State& st, job j, std::size_t threads) {
    const auto a = random_vector(j.m * j.k, 1), b = random_vector(j.k * j.n, 2);
    ctdl::aligned_buffer<float> c(j.m * j.n);
    auto& pool = pool_of(threads);
    if (threads > 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto f = j.ta == trans::n ? (j.tb == trans::n ? &run_ctdl<trans::n, trans::n> : &run_ctdl<trans::n, trans::t>)
                              : (j.tb == trans::n ? &run_ctdl<trans::t, trans::n> : &run_ctdl<trans::t, trans::t>);
    for (auto _ : st) {
        f(j, a.data(), b.data(), c.data(), pool);
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    st.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(j.m) * double(j.n) * double(j.k),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

#ifdef CTDL_BENCH_OPENBLAS
void bench_openblas(benchmark::State& st, job j, std::size_t threads) {
    const auto a = random_vector(j.m * j.k, 1), b = random_vector(j.k * j.n, 2);
    ctdl::aligned_buffer<float> c(j.m * j.n);
    openblas_set_num_threads(int(threads));
    const int lda = int(j.ta == trans::n ? j.k : j.m), ldb = int(j.tb == trans::n ? j.n : j.k);
    const auto ta = j.ta == trans::n ? CblasNoTrans : CblasTrans, tb = j.tb == trans::n ? CblasNoTrans : CblasTrans;
    for (auto _ : st) {
        cblas_sgemm(CblasRowMajor, ta, tb, int(j.m), int(j.n), int(j.k), 1.0f, a.data(), lda, b.data(), ldb, 0.0f,
                    c.data(), int(j.n));
        benchmark::DoNotOptimize(c.data());
        benchmark::ClobberMemory();
    }
    st.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(j.m) * double(j.n) * double(j.k),
                                               benchmark::Counter::kIsIterationInvariantRate);
}
#endif

// The core's fp32 FMA peak, measured: independent FMA chains on registers only, enough
// of them to cover the FMA latency on every pipe (2 pipes x 4-5 cycles), and few enough to
// stay in registers with the two operands: 12 of AVX2's 16 registers (16 chains spilled
// there and measured half the peak), 16 of AVX-512's 32. Counter GFLOPS = 2 FLOP per lane
// per FMA.
void bench_peak(benchmark::State& st) {
    using S = ctdl::cpu_kernels::detail::simd<float>;
    constexpr int chains = S::width >= 16 ? 16 : 12;
    typename S::reg acc[chains], x = S::set1(1.0f + 1e-7f), y = S::set1(1e-7f);
    for (auto& a : acc) a = S::set1(0.5f);
    constexpr long reps = 1024;
    for (auto _ : st) {
        for (long r = 0; r < reps; ++r)
#pragma GCC unroll 16
            for (auto& a : acc) a = S::fma(a, x, y);  // in registers: the loop is unrolled
        benchmark::DoNotOptimize(acc);
    }
    st.counters["GFLOPS"] = benchmark::Counter(2e-9 * double(reps) * chains * S::width,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

std::vector<job> jobs() {
    std::vector<job> v;
    for (std::size_t s : {64, 128, 256, 512, 1024}) v.push_back({"nn", trans::n, trans::n, s, s, s});
    const std::size_t batch = 64;
    for (auto [in, out] : {std::pair<std::size_t, std::size_t>{784, 256}, {256, 256}, {256, 10}}) {
        v.push_back({"nt", trans::n, trans::t, batch, out, in});
        v.push_back({"nn", trans::n, trans::n, batch, in, out});
        v.push_back({"tn", trans::t, trans::n, out, in, batch});
    }
    // Batch-1 inference: the forward products of the MLP's two large layers.
    for (auto [in, out] : {std::pair<std::size_t, std::size_t>{784, 256}, {256, 256}})
        v.push_back({"nt", trans::n, trans::t, 1, out, in});
    return v;
}

std::string name(const char* lib, const job& j, std::size_t threads) {
    return std::string("gemm/") + lib + "/" + j.form + "/" + std::to_string(j.m) + "x" + std::to_string(j.n) + "x" +
           std::to_string(j.k) + "/threads:" + std::to_string(threads);
}

}  // namespace

int main(int argc, char** argv) {
    benchmark::RegisterBenchmark("peak/fma", bench_peak)->UseRealTime()->MinTime(0.2);
    for (std::size_t t : {1, 2})
        for (const job& j : jobs()) {
            benchmark::RegisterBenchmark(name("ctdl", j, t).c_str(), bench_ctdl, j, t)->UseRealTime()->MinTime(0.2);
#ifdef CTDL_BENCH_OPENBLAS
            benchmark::RegisterBenchmark(name("openblas", j, t).c_str(), bench_openblas, j, t)->UseRealTime()->MinTime(0.2);
#endif
        }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
