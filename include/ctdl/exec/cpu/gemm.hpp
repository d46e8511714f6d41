#pragma once
// General matrix product on the cpu policy (first, simple version).
//
//   C[M,N] = op(A)[M,K] · op(B)[K,N]      (or C += op(A)·op(B) with `accumulate`)
//
// All matrices are row-major with explicit row strides. op(X) = X (trans::n) or Xᵀ
// (trans::t). After each element of C holds its final value the epilogue is called once
// for it, in row segments: ep(row, col0, &C[row, col0], len).
#include <algorithm>
#include <cstddef>

#include "../pass_count.hpp"
#include "pool.hpp"

namespace ctdl {

enum class trans { n, t };

namespace epilogue {

/// No epilogue.
struct none {
    template <class T>
    void operator()(std::size_t, std::size_t, T*, std::size_t) const {}
};

/// c[j] += b[col0 + j]: a bias over the columns of C (a linear layer's output features).
template <class T>
struct bias {
    const T* b;
    void operator()(std::size_t, std::size_t col0, T* c, std::size_t len) const {
        const T* bb = b + col0;
        for (std::size_t j = 0; j < len; ++j) c[j] += bb[j];
    }
};

}  // namespace epilogue

namespace cpu_kernels {

template <trans TA, trans TB, class T, class Epilogue = epilogue::none>
void gemm(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t ldb,
          T* C, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    auto rows = [&](std::size_t i0, std::size_t i1) {
        for (std::size_t i = i0; i < i1; ++i) {
            T* c = C + i * ldc;
            if (!accumulate)
                for (std::size_t j = 0; j < N; ++j) c[j] = T(0);
            for (std::size_t k = 0; k < K; ++k) {
                const T a = TA == trans::n ? A[i * lda + k] : A[k * lda + i];
                if constexpr (TB == trans::n) {
                    const T* b = B + k * ldb;
                    for (std::size_t j = 0; j < N; ++j) c[j] += a * b[j];
                } else {
                    for (std::size_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
                }
            }
            ep(i, std::size_t{0}, c, N);
        }
    };
    if (M * N * (K + 1) < (std::size_t{1} << 16)) {
        rows(0, M);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const auto [b, e] = thread_pool::split(M, t, n);
        if (b < e) rows(b, e);
    });
}

template <std::size_t M, std::size_t N, std::size_t K, trans TA, trans TB, class T, class Epilogue = epilogue::none>
void gemm(const T* A, const T* B, T* C, bool accumulate = false, const Epilogue& ep = {},
          thread_pool& pool = cpu_pool()) {
    constexpr std::size_t lda = TA == trans::n ? K : M;
    constexpr std::size_t ldb = TB == trans::n ? N : K;
    gemm<TA, TB, T, Epilogue>(M, N, K, A, lda, B, ldb, C, N, accumulate, ep, pool);
}

}  // namespace cpu_kernels
}  // namespace ctdl
