#pragma once
// ctdl::device's GEMM on CUDA: cuBLASLt for the product, then the epilogue.
//
// An epilogue cuBLASLt knows (none, bias, bias + relu, bias + tanh-GELU: see
// epilogue::fused_form) runs fused inside cuBLASLt's kernel. Any other epilogue runs after
// the product as one Thrust pass over C with one thread per element, ep(row, col, &C[row,
// col], 1): the epilogue contract allows segments of any length, and one element per
// thread keeps the pass coalesced. A fused form cuBLASLt turns down (double with some
// epilogues, a bias not 16-byte aligned) takes that path too.
//
// Empty unless CTDL_DEVICE_CUDA (nvcc with Thrust's CUDA system): device.hpp includes it
// always and dispatches on that macro.
#include "cuda_config.hpp"

#if CTDL_DEVICE_CUDA
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>

#include "../epilogue.hpp"
#include "../hd.hpp"
#include "cublaslt.hpp"

namespace ctdl::device_cuda {

/// What ep computes, as a fused form; activation::custom when it does not say.
template <class T, class Ep>
epilogue::fused_form<T> fused_form_of(const Ep& ep) {
    if constexpr (std::is_same_v<Ep, epilogue::none>) return {nullptr, epilogue::activation::none};
    else if constexpr (std::is_same_v<Ep, epilogue::bias<T>>) return {ep.b, epilogue::activation::none};
    else if constexpr (requires { { ep.fused() } -> std::same_as<epilogue::fused_form<T>>; }) return ep.fused();
    else return {};
}

/// C[i, j] = 0 first when `zero`, then ep(i, j, &C[i, j], 1); one thread per element.
template <class T, class Ep>
struct finish_fn {
    std::size_t n;
    T* c;
    std::size_t ldc;
    bool zero;
    Ep ep;
    CTDL_HD void operator()(std::size_t idx) const {
        const std::size_t i = idx / n, j = idx - i * n;
        T* p = c + i * ldc + j;
        if (zero) *p = T(0);
        ep(i, j, p, std::size_t{1});
    }
};

template <class T, class Ep>
void finish(std::size_t m, std::size_t n, T* c, std::size_t ldc, bool zero, const Ep& ep) {
    thrust::for_each_n(thrust::cuda::par_nosync, thrust::counting_iterator<std::size_t>(0), m * n,
                       finish_fn<T, Ep>{n, c, ldc, zero, ep});
    CTDL_CUDA_CHECK(cudaGetLastError());
}

/// C (m × n, row-major, ldc) = op(A)·op(B) (+ C when accumulate), then ep; float or double.
template <trans TA, trans TB, class T, class Ep>
void gemm(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b, std::size_t ldb, T* c,
          std::size_t ldc, bool accumulate, const Ep& ep) {
    static_assert(blas_type<T>, "ctdl::device on CUDA: GEMMs are float or double");
    if (m == 0 || n == 0) return;
    constexpr bool no_epilogue = std::is_same_v<Ep, epilogue::none>;
    if (k == 0) {  // an empty sum: C keeps its value or becomes 0
        if (!accumulate || !no_epilogue) finish(m, n, c, ldc, !accumulate, ep);
        return;
    }
    auto& ctx = cublaslt_context::current();
    auto run = [&](const T* bias, epilogue::activation act) {
        const matmul_key key{blas_types<T>::data,
                             TA == trans::t,
                             TB == trans::t,
                             m,
                             n,
                             k,
                             static_cast<std::int64_t>(lda),
                             static_cast<std::int64_t>(ldb),
                             static_cast<std::int64_t>(ldc),
                             act,
                             bias != nullptr,
                             alignment_of(a),
                             alignment_of(b),
                             alignment_of(c)};
        return ctx.matmul(key, a, b, c, accumulate, bias);
    };
    const epilogue::fused_form<T> form = fused_form_of<T>(ep);
    if (form.act != epilogue::activation::custom && (!form.bias || alignment_of(form.bias) >= 16) &&
        run(form.bias, form.act))
        return;
    if (!run(nullptr, epilogue::activation::none))
        throw error("cuBLASLt has no algorithm for this GEMM (m, n, k = " + std::to_string(m) + ", " +
                    std::to_string(n) + ", " + std::to_string(k) + ")");
    if constexpr (!no_epilogue) finish(m, n, c, ldc, false, ep);
}

}  // namespace ctdl::device_cuda

#endif  // CTDL_DEVICE_CUDA
