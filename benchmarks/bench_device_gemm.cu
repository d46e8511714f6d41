// ctdl::device::gemm on CUDA against cuBLASLt called directly, float, on the GPU.
//
// Names: gemm/<lib>/<form>/<M>x<N>x<K>, counter TFLOPS = 2·M·N·K per second of GPU time
// (CUDA events around REPS back-to-back products; Google Benchmark's manual time).
// The sizes are benchmarks/bench_gemm.cpp's (squares 64…1024 in the nn form; each linear
// layer of the MLP 784-256-256-10 at batch 64 in its three forms: forward nt, dX nn, dW tn),
// plus squares 2048 and 4096, where a GPU is busy enough to approach its peak. Forms with an
// epilogue: nt+bias_relu (a linear layer's forward, fused by both) and nt+custom (ctdl's
// epilogue pass after the product, against cuBLASLt's plain product: what that pass costs).
//
// Both libraries compute in FP32 (CUBLAS_COMPUTE_32F; -DCTDL_CUDA_TF32 switches both to
// TF32), with 32 MiB of workspace, on 256-byte aligned buffers, the row-major product
// computed as its column-major transpose. scripts/gpu-check prints the table and the ratio.
#include <benchmark/benchmark.h>
#include <ctdl/exec/device.hpp>

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using ctdl::trans;
namespace ep = ctdl::epilogue;
using ctdl::device_cuda::check;

constexpr int reps = 20;

enum class epi { none, bias_relu, custom };

struct job {
    std::string form;
    trans ta, tb;
    std::size_t m, n, k;
    epi e = epi::none;
};

/// act(c + b) stated as a fused form, as nn::linear's forward epilogue does.
struct bias_relu {
    const float* b;
    CTDL_HD void operator()(std::size_t, std::size_t col0, float* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) c[j] = c[j] + b[col0 + j] > 0.f ? c[j] + b[col0 + j] : 0.f;
    }
    ep::fused_form<float> fused() const { return {b, ep::activation::relu}; }
};

/// An epilogue cuBLASLt does not know: c = 1 / (1 + e^-(c + b)).
struct bias_sigmoid {
    const float* b;
    CTDL_HD void operator()(std::size_t, std::size_t col0, float* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) c[j] = 1.f / (1.f + expf(-(c[j] + b[col0 + j])));
    }
};

struct buffers {
    float *a = nullptr, *b = nullptr, *c = nullptr, *bias = nullptr;
    explicit buffers(const job& j) {
        auto make = [](float*& p, std::size_t n, unsigned seed) {
            CTDL_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
            std::mt19937 g(seed);
            std::uniform_real_distribution<float> d(-1, 1);
            std::vector<float> h(n);
            for (auto& x : h) x = d(g);
            CTDL_CUDA_CHECK(cudaMemcpy(p, h.data(), n * sizeof(float), cudaMemcpyHostToDevice));
        };
        make(a, j.m * j.k, 1);
        make(b, j.k * j.n, 2);
        make(c, j.m * j.n, 3);
        make(bias, j.n, 4);
    }
    ~buffers() {
        cudaFree(a);
        cudaFree(b);
        cudaFree(c);
        cudaFree(bias);
    }
};

/// Times `reps` calls of f with CUDA events: the iteration's GPU time per call.
template <class F>
void time_gpu(benchmark::State& st, const job& j, F f) {
    cudaEvent_t start, stop;
    CTDL_CUDA_CHECK(cudaEventCreate(&start));
    CTDL_CUDA_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < 3; ++i) f();  // warm-up: plans, heuristics, clocks
    CTDL_CUDA_CHECK(cudaDeviceSynchronize());
    for (auto _ : st) {
        CTDL_CUDA_CHECK(cudaEventRecord(start));
        for (int r = 0; r < reps; ++r) f();
        CTDL_CUDA_CHECK(cudaEventRecord(stop));
        CTDL_CUDA_CHECK(cudaEventSynchronize(stop));
        float ms = 0;
        CTDL_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
        st.SetIterationTime(double(ms) * 1e-3 / reps);
    }
    CTDL_CUDA_CHECK(cudaGetLastError());
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    st.counters["TFLOPS"] = benchmark::Counter(2e-12 * double(j.m) * double(j.n) * double(j.k),
                                               benchmark::Counter::kIsIterationInvariantRate);
}

template <trans TA, trans TB>
void run_ctdl(const job& j, const buffers& d) {
    const std::size_t lda = TA == trans::n ? j.k : j.m, ldb = TB == trans::n ? j.n : j.k;
    switch (j.e) {
        case epi::none: ctdl::device::gemm<TA, TB>(j.m, j.n, j.k, d.a, lda, d.b, ldb, d.c, j.n); break;
        case epi::bias_relu:
            ctdl::device::gemm<TA, TB>(j.m, j.n, j.k, d.a, lda, d.b, ldb, d.c, j.n, false, bias_relu{d.bias});
            break;
        case epi::custom:
            ctdl::device::gemm<TA, TB>(j.m, j.n, j.k, d.a, lda, d.b, ldb, d.c, j.n, false, bias_sigmoid{d.bias});
            break;
    }
}

void bench_ctdl(benchmark::State& st, job j) {
    buffers d(j);
    auto f = j.ta == trans::n ? (j.tb == trans::n ? &run_ctdl<trans::n, trans::n> : &run_ctdl<trans::n, trans::t>)
                              : (j.tb == trans::n ? &run_ctdl<trans::t, trans::n> : &run_ctdl<trans::t, trans::t>);
    time_gpu(st, j, [&] { f(j, d); });
}

/// The peer: cuBLASLt set up once for this product (handle, descriptors, the heuristics'
/// first algorithm), then cublasLtMatmul alone in the timed loop.
void bench_cublaslt(benchmark::State& st, job j) {
    buffers d(j);
    cublasLtHandle_t h;
    CTDL_CUDA_CHECK(cublasLtCreate(&h));
    void* ws = nullptr;
    const std::size_t ws_bytes = std::size_t{32} << 20;
    CTDL_CUDA_CHECK(cudaMalloc(&ws, ws_bytes));
    cublasLtMatmulDesc_t desc;
    CTDL_CUDA_CHECK(cublasLtMatmulDescCreate(&desc, ctdl::device_cuda::blas_types<float>::compute, CUDA_R_32F));
    // Row-major C = op(A)·op(B) as column-major Cᵀ = op(B)ᵀ·op(A)ᵀ.
    const cublasOperation_t op_a = j.tb == trans::t ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_b = j.ta == trans::t ? CUBLAS_OP_T : CUBLAS_OP_N;
    CTDL_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof(op_a)));
    CTDL_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof(op_b)));
    if (j.e == epi::bias_relu) {
        const cublasLtEpilogue_t e = CUBLASLT_EPILOGUE_RELU_BIAS;
        CTDL_CUDA_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e)));
        CTDL_CUDA_CHECK(
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &d.bias, sizeof(d.bias)));
    }
    const std::size_t lda = j.ta == trans::n ? j.k : j.m, ldb = j.tb == trans::n ? j.n : j.k;
    cublasLtMatrixLayout_t la, lb, lc;
    CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, j.tb == trans::t ? j.k : j.n,
                                               j.tb == trans::t ? j.n : j.k, ldb));
    CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, j.ta == trans::t ? j.m : j.k,
                                               j.ta == trans::t ? j.k : j.m, lda));
    CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, j.n, j.m, j.n));
    cublasLtMatmulPreference_t pref;
    CTDL_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    const std::uint64_t ws64 = ws_bytes;
    CTDL_CUDA_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws64, sizeof(ws64)));
    cublasLtMatmulHeuristicResult_t res{};
    int found = 0;
    CTDL_CUDA_CHECK(cublasLtMatmulAlgoGetHeuristic(h, desc, la, lb, lc, lc, pref, 1, &res, &found));
    if (found == 0) {
        st.SkipWithError("cuBLASLt: no algorithm");
    } else {
        const float alpha = 1.f, beta = 0.f;
        time_gpu(st, j, [&] {
            CTDL_CUDA_CHECK(cublasLtMatmul(h, desc, &alpha, d.b, la, d.a, lb, &beta, d.c, lc, d.c, lc, &res.algo, ws,
                                           ws_bytes, cudaStream_t{}));
        });
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    cudaFree(ws);
    cublasLtDestroy(h);
}

std::vector<job> jobs() {
    std::vector<job> v;
    for (std::size_t s : {64, 128, 256, 512, 1024, 2048, 4096}) v.push_back({"nn", trans::n, trans::n, s, s, s});
    const std::size_t batch = 64;
    for (auto [in, out] : {std::pair<std::size_t, std::size_t>{784, 256}, {256, 256}, {256, 10}}) {
        v.push_back({"nt", trans::n, trans::t, batch, out, in});
        v.push_back({"nn", trans::n, trans::n, batch, in, out});
        v.push_back({"tn", trans::t, trans::n, out, in, batch});
        v.push_back({"nt+bias_relu", trans::n, trans::t, batch, out, in, epi::bias_relu});
        v.push_back({"nt+custom", trans::n, trans::t, batch, out, in, epi::custom});
    }
    for (std::size_t s : {1024, 4096}) {
        v.push_back({"nt+bias_relu", trans::n, trans::t, s, s, s, epi::bias_relu});
        v.push_back({"nt+custom", trans::n, trans::t, s, s, s, epi::custom});
    }
    return v;
}

std::string name(const char* lib, const job& j) {
    return std::string("gemm/") + lib + "/" + j.form + "/" + std::to_string(j.m) + "x" + std::to_string(j.n) + "x" +
           std::to_string(j.k);
}

}  // namespace

int main(int argc, char** argv) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::fprintf(stderr, "bench_device_gemm: no CUDA device\n");
        return 77;
    }
    for (const job& j : jobs()) {
        benchmark::RegisterBenchmark(name("ctdl", j).c_str(), bench_ctdl, j)->UseManualTime()->MinTime(0.1);
        // nt+custom's peer is cuBLASLt's plain product: the ratio is what ctdl's epilogue pass costs.
        benchmark::RegisterBenchmark(name("cublaslt", j).c_str(), bench_cublaslt, j)->UseManualTime()->MinTime(0.1);
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
