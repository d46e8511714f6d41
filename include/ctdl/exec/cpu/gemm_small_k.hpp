#pragma once
// The small-K path of the cpu GEMM: C = A·B with both operands row-major (A's rows
// contiguous along k, B's rows contiguous along n) and K ≤ small_k (the dX = dY·W of a
// layer with few outputs, e.g. a classifier's last layer, K = 10).
//
// B's K rows fit L1 whole and each element of C is a handful of FMAs, so packing never
// pays and the BLIS driver's blocking is overhead: the register-tile micro-kernel reads A
// and B in place and walks C row panel by row panel (each panel's stores are whole
// consecutive rows). Measured on Zen 5 at 64×256×10: 1290 ns here, 1440 ns through the
// driver with the same tile, 1430 ns for OpenBLAS.
//
// Every element is the micro-kernel's FMA chain from 0, k ascending — the same arithmetic
// as the driver's (K ≤ small_k is one K block) — so this path agrees bitwise with the
// driver and never depends on the thread count.
#include <algorithm>
#include <cstddef>

#include "gemm_dot.hpp"
#include "gemm_epilogue.hpp"
#include "gemm_kernel.hpp"
#include "gemm_pack.hpp"
#include "gemm_simd.hpp"
#include "pool.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::detail {

/// Depth up to which C = A·B (both row-major) takes the small-K path.
inline constexpr std::size_t small_k = 16;

/// Rows [r0, r1) of C = A·B (or C += A·B), the epilogue over each tile's rows as soon as
/// they are final. The micro-kernel reads whole tiles: a row panel of fewer than MR rows
/// runs the 4-, 2- and 1-row tiles, and a last column panel of fewer than NR columns reads
/// a zero-padded copy of its K × nr corner of B, so nothing past A or B is read.
template <class T, std::size_t MR, std::size_t NV>
void gemm_small_k_rows(std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t ldb, T* C,
                       std::size_t ldc, bool accumulate, tile_epilogue<T> ep, std::size_t r0, std::size_t r1) {
    constexpr std::size_t NR = NV * simd<T>::width;
    const std::size_t n_full = N / NR * NR;
    alignas(64) T edge[small_k * NR];
    if (n_full < N) pack_panels<NR>(B + n_full, 1, ldb, N - n_full, K, edge);  // zero-padded to NR
    auto panel = [&]<std::size_t H>(std::size_t i0) {
        for (std::size_t j0 = 0; j0 < N; j0 += NR) {
            const std::size_t nr = std::min(NR, N - j0);
            T* c = C + i0 * ldc + j0;
            const T* b = nr == NR ? B + j0 : edge;
            micro_kernel<T, H, NV, true>::run(K, A + i0 * lda, lda, b, nr == NR ? ldb : NR, c, ldc, H, nr, accumulate);
            ep(i0, j0, c, ldc, H, nr);
        }
    };
    std::size_t i0 = r0;
    for (; i0 + MR <= r1; i0 += MR) panel.template operator()<MR>(i0);
    if constexpr (MR > 4)
        for (; i0 + 4 <= r1; i0 += 4) panel.template operator()<4>(i0);
    for (; i0 + 2 <= r1; i0 += 2) panel.template operator()<2>(i0);
    for (; i0 < r1; ++i0) panel.template operator()<1>(i0);
}

template <class T>
void gemm_small_k(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                  std::size_t ldb, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep, thread_pool& pool) {
    constexpr std::size_t MR = tile<T>::rows, NV = tile<T>::vecs;
    split_rows<MR>(M, M * N * K, serial_work_unpacked, pool, [&](std::size_t r0, std::size_t r1) {
        gemm_small_k_rows<T, MR, NV>(N, K, A, lda, B, ldb, C, ldc, accumulate, ep, r0, r1);
    });
}

}  // namespace ctdl::cpu_kernels::detail
