#pragma once
// cuBLASLt for ctdl::device's GEMMs on CUDA: one handle and one workspace per GPU, and a
// plan per distinct product (sizes, leading dimensions, transpositions, fused epilogue,
// pointer alignments) made on first use. After warm-up a GEMM allocates nothing: it looks
// its plan up and calls cublasLtMatmul on the default stream, as Thrust's kernels do.
//
// ctdl's matrices are row-major and cuBLASLt's column-major, so C = op(A)·op(B) (m × n) runs
// as Cᵀ = op(B)ᵀ·op(A)ᵀ (n × m): B's buffer is cuBLASLt's A, A's buffer its B, and C's rows
// are its columns. A bias over C's columns is then cuBLASLt's bias over the rows of D,
// which is what CUBLASLT_EPILOGUE_BIAS adds.
//
// float computes in FP32 (CUBLAS_COMPUTE_32F: the cpu policy's results, to rounding);
// define CTDL_CUDA_TF32 for TF32 tensor cores. double computes in FP64.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <type_traits>

#include "../epilogue.hpp"
#include "cuda_error.hpp"

namespace ctdl::device_cuda {

template <class T>
inline constexpr bool blas_type = std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
struct blas_types;
template <>
struct blas_types<float> {
    static constexpr cudaDataType_t data = CUDA_R_32F;
#if defined(CTDL_CUDA_TF32)
    static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F_FAST_TF32;
#else
    static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
#endif
};
template <>
struct blas_types<double> {
    static constexpr cudaDataType_t data = CUDA_R_64F;
    static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
};

/// The largest power of two (at most 256) that divides the address: what cuBLASLt's
/// heuristics must assume of a pointer (their default is 256, which an offset into a flat
/// parameter buffer rarely has).
inline std::uint32_t alignment_of(const void* p) {
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    std::uint32_t r = 256;
    while (r > 1 && a % r != 0) r /= 2;
    return r;
}

/// One row-major product C (m × n) = op(A) · op(B) [+ C] with a fused epilogue.
struct matmul_key {
    cudaDataType_t type;
    bool ta, tb;
    std::uint64_t m, n, k;
    std::int64_t lda, ldb, ldc;
    epilogue::activation act;
    bool bias;
    std::uint32_t align_a, align_b, align_c;

    auto tie() const { return std::tie(type, ta, tb, m, n, k, lda, ldb, ldc, act, bias, align_a, align_b, align_c); }
    friend bool operator<(const matmul_key& x, const matmul_key& y) { return x.tie() < y.tie(); }
};

/// A product's cuBLASLt descriptors and the algorithm the heuristics chose; ok = false when
/// cuBLASLt has none (an epilogue it does not support for this type or these sizes).
struct matmul_plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool ok = false;

    matmul_plan() = default;
    matmul_plan(const matmul_plan&) = delete;
    matmul_plan& operator=(const matmul_plan&) = delete;
    ~matmul_plan() {
        // Errors are ignored here: this may run while the process exits.
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (c) cublasLtMatrixLayoutDestroy(c);
        if (desc) cublasLtMatmulDescDestroy(desc);
    }
};

inline cublasLtEpilogue_t lt_epilogue(epilogue::activation act, bool bias) {
    switch (act) {
        case epilogue::activation::relu: return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
        case epilogue::activation::gelu_tanh: return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
        default: return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    }
}

/// The handle, workspace and plans of one GPU.
class cublaslt_context {
public:
    static constexpr std::size_t workspace_bytes = std::size_t{32} << 20;  // NVIDIA's advice for Hopper

    cublaslt_context() {
        CTDL_CUDA_CHECK(cublasLtCreate(&handle_));
        if (const cudaError_t s = cudaMalloc(&workspace_, workspace_bytes); s != cudaSuccess) {
            cublasLtDestroy(handle_);
            check(s, "cudaMalloc(&workspace_, workspace_bytes)");
        }
    }
    cublaslt_context(const cublaslt_context&) = delete;
    cublaslt_context& operator=(const cublaslt_context&) = delete;
    ~cublaslt_context() {
        plans_.clear();
        cudaFree(workspace_);
        cublasLtDestroy(handle_);
    }

    /// The context of the current device (cudaGetDevice), made on first use.
    static cublaslt_context& current() {
        int device = 0;
        CTDL_CUDA_CHECK(cudaGetDevice(&device));
        static std::mutex m;
        static std::map<int, std::unique_ptr<cublaslt_context>> all;
        std::lock_guard lock(m);
        auto& p = all[device];
        if (!p) p = std::make_unique<cublaslt_context>();
        return *p;
    }

    /// Plans made so far (tests check that it stops growing after warm-up).
    std::size_t plan_count() {
        std::lock_guard lock(mutex_);
        return plans_.size();
    }

    /// C = op(A)·op(B) (+ C when accumulate), then act(· + bias), in cuBLASLt. Returns false
    /// when cuBLASLt has no algorithm for it (the caller falls back to a plainer product).
    template <class T>
    bool matmul(const matmul_key& key, const T* a, const T* b, T* c, bool accumulate, const T* bias) {
        std::lock_guard lock(mutex_);
        const matmul_plan& p = plan(key);
        if (!p.ok) return false;
        if (bias) CTDL_CUDA_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                                 sizeof(bias)));
        const T alpha = T(1), beta = accumulate ? T(1) : T(0);
        // cuBLASLt's A is our B, its B our A (see the top of this file).
        CTDL_CUDA_CHECK(cublasLtMatmul(handle_, p.desc, &alpha, b, p.a, a, p.b, &beta, c, p.c, c, p.c, &p.algo,
                                       workspace_, workspace_bytes, cudaStream_t{}));
        return true;
    }

private:
    template <class A>
    static void set(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const A& v) {
        CTDL_CUDA_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &v, sizeof(v)));
    }
    template <class A>
    static void set(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const A& v) {
        CTDL_CUDA_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v)));
    }

    const matmul_plan& plan(const matmul_key& key) {
        if (auto it = plans_.find(key); it != plans_.end()) return it->second;
        matmul_plan& p = plans_[key];
        try {
            make(key, p);
        } catch (...) {
            plans_.erase(key);
            throw;
        }
        return p;
    }

    void make(const matmul_key& key, matmul_plan& p) {
        const cudaDataType_t t = key.type;
        const cublasComputeType_t compute =
            t == CUDA_R_64F ? blas_types<double>::compute : blas_types<float>::compute;
        CTDL_CUDA_CHECK(cublasLtMatmulDescCreate(&p.desc, compute, t));
        // cuBLASLt's A = our B (column-major: n × k, or k × n read transposed), its B = our A.
        const cublasOperation_t op_a = key.tb ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = key.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
        set(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a);
        set(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b);
        set(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, lt_epilogue(key.act, key.bias));
        CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.a, t, key.tb ? key.k : key.n, key.tb ? key.n : key.k, key.ldb));
        CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.b, t, key.ta ? key.m : key.k, key.ta ? key.k : key.m, key.lda));
        CTDL_CUDA_CHECK(cublasLtMatrixLayoutCreate(&p.c, t, key.n, key.m, key.ldc));

        cublasLtMatmulPreference_t pref = nullptr;
        CTDL_CUDA_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
        try {
            set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, std::uint64_t{workspace_bytes});
            set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b);  // our B
            set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a);  // our A
            set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_c);
            set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_c);
            s = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
        } catch (...) {
            cublasLtMatmulPreferenceDestroy(pref);
            throw;
        }
        cublasLtMatmulPreferenceDestroy(pref);
        if (s == CUBLAS_STATUS_NOT_SUPPORTED || (s == CUBLAS_STATUS_SUCCESS && found == 0)) return;  // ok = false
        check(s, "cublasLtMatmulAlgoGetHeuristic(...)");
        p.algo = result.algo;
        p.ok = true;
    }

    cublasLtHandle_t handle_ = nullptr;
    void* workspace_ = nullptr;
    std::mutex mutex_;
    std::map<matmul_key, matmul_plan> plans_;
};

}  // namespace ctdl::device_cuda
