#pragma once
// C = A·Bᵀ with B packed in bf16 (a decoding session's weights, infer::bf16_decoder): A and
// C stay float, each weight is widened exactly to float as it is loaded (zero-extended to 32
// bits and shifted up by 16) and every product and sum is a float FMA, so the result is that
// of a float pack of the widened weights: only the weights were rounded, not the activations.
// (AVX-512 BF16's vdpbf16ps would round the activations to bf16 as well: not used.)
//
// The pack is pack_dot's layout (gemm_dot.hpp) in bf16: groups of 4 output columns, each
// one contiguous stream of whole k-steps of 16 lanes ([step][column][16]), then each
// column's K mod 16 tail, each group on whole 64-byte lines. pack_dot_bf16 makes it from a
// float weight stored [N, K] (a linear layer's [out, in]) or [K, N] (Conv1D's [in, out]),
// rounding to nearest, ties to even (ctdl::bf16::round). The layout is the same on every ISA.
//
// gemm_packed_bf16 runs any number of rows:
//   AVX-512      M ≤ 4: gemm_dot's kernel on the widened pack, bit for bit the float pack's
//                (gemm_packed) result on the widened weights; M > 4: the same per-group
//                arithmetic for blocks of 4 rows, each group of columns read from memory
//                once per 32 rows (the rest from L1), so a prefill or a batched step streams
//                the weights once rather than once per 4 rows.
//   otherwise    the same structure in AVX2 + FMA registers (8 lanes) or scalars, blocks of
//                2 rows: a portable fallback, equal to the float product to rounding.
// Columns are split over the threads in fixed shares (the static split of gemm_dot), so a
// result does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../core/bf16.hpp"
#include "../epilogue.hpp"
#include "../isa.hpp"
#include "../pass_count.hpp"
#include "gemm_dot.hpp"
#include "gemm_epilogue.hpp"
#include "gemm_simd.hpp"
#include "intrinsic_warnings.hpp"
#include "pool.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {

/// Lanes of one k-step of the bf16 pack (on every ISA: one AVX-512 register of floats).
inline constexpr std::size_t bf16_step = 16;

/// Elements pack_dot_bf16 writes for B of N columns × K: groups of 4 columns, each group on
/// whole 64-byte lines (32 bf16).
constexpr std::size_t packed_size_bf16(std::size_t N, std::size_t K) {
    return (N + 3) / 4 * ((4 * K + 31) / 32 * 32);
}

/// Packs the float matrix B of N columns × K (column j's element k at B[j·js + k·ks]:
/// [N, K] row-major is js = K, ks = 1; [K, N] is js = 1, ks = N) into bf16, each element
/// rounded to nearest, ties to even. Columns past N repeat the group's first column; the
/// padding of a group is zero.
inline void pack_dot_bf16(std::size_t N, std::size_t K, const float* B, std::size_t js, std::size_t ks,
                          bf16* packed) {
    constexpr std::size_t JB = 4, W = bf16_step;
    const std::size_t kv = K / W * W, gs = (JB * K + 31) / 32 * 32;
    for (std::size_t j = 0; j < N; j += JB) {
        bf16* g = packed + j / JB * gs;
        const std::size_t jn = std::min(JB, N - j);
        auto col = [&](std::size_t q) { return B + (j + (q < jn ? q : 0)) * js; };
        for (std::size_t k = 0; k < kv; k += W)
            for (std::size_t q = 0; q < JB; ++q)
                for (std::size_t l = 0; l < W; ++l) g[k * JB + q * W + l] = bf16::round(col(q)[(k + l) * ks]);
        for (std::size_t q = 0; q < JB; ++q)
            for (std::size_t kk = kv; kk < K; ++kk) g[kv * JB + q * (K - kv) + (kk - kv)] = bf16::round(col(q)[kk * ks]);
        std::fill(g + JB * K, g + gs, bf16{});
    }
}

namespace detail {

/// Rows of A whose products with one group of columns run before the next group is read:
/// 32 rows of up to 3072 floats (384 KiB) stay in L2 while the group (4 columns, ≤ 24 KiB
/// of bf16 at K = 3072) is reused from L1 by each block of rows.
inline constexpr std::size_t bf16_chunk_rows = 32;

/// Weight bytes up to which a product runs on the calling thread alone (as gemm_dot).
inline constexpr std::size_t bf16_split_bytes = dot_split_bytes;

#if defined(__AVX512F__)
static_assert(dot_b<float, true, bf16>::W == bf16_step);

/// Rows of A per block: gemm_dot's kernel for up to 4 rows.
inline constexpr std::size_t bf16_block_rows = 4;

/// The MR (≤ 4) rows at A of the group at column j: gemm_dot's arithmetic.
template <std::size_t MR>
inline void bf16_group(std::size_t K, const float* A, std::size_t lda, const bf16* packed, std::size_t j,
                       std::size_t jn, float* C, std::size_t ldc, bool accumulate) {
    const dot_b<float, true, bf16> b{packed, dot_b<float, true, bf16>::group_stride(K), K};
    dot_group<float, MR>(K, A, lda, b, b.group(j, jn), j, jn, C, ldc, accumulate);
}

#else

/// Rows of A per block in the portable kernel: 2 rows × 4 columns of accumulators (of 16
/// ymm registers with AVX2).
inline constexpr std::size_t bf16_block_rows = 2;

/// simd<float>::width bf16 at p, widened exactly.
inline typename simd<float>::reg widen_bf16_reg(const bf16* p) {
#if defined(__AVX2__) && defined(__FMA__)
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
#else
    return p->widen();
#endif
}

/// The MR (≤ 2) rows at A of the group at column j: per element, simd<float>::width lane
/// sums by FMA over the whole k-steps in k order, added in lane order, then the tail in order.
template <std::size_t MR>
inline void bf16_group(std::size_t K, const float* A, std::size_t lda, const bf16* packed, std::size_t j,
                       std::size_t jn, float* C, std::size_t ldc, bool accumulate) {
    using S = simd<float>;
    using reg = typename S::reg;
    constexpr std::size_t JB = 4, W = bf16_step, L = S::width, V = W / L;
    static_assert(W % L == 0);
    const std::size_t kv = K / W * W, gs = (JB * K + 31) / 32 * 32;
    const bf16* g = packed + j / JB * gs;
    reg acc[MR][JB];
    for (auto& ai : acc)
        for (auto& a : ai) a = S::zero();
    for (std::size_t k = 0; k < kv; k += W)
        for (std::size_t v = 0; v < V; ++v) {
            reg av[MR];
            for (std::size_t i = 0; i < MR; ++i) av[i] = S::load(A + i * lda + k + v * L);
            for (std::size_t q = 0; q < JB; ++q) {
                const reg bv = widen_bf16_reg(g + k * JB + q * W + v * L);
                for (std::size_t i = 0; i < MR; ++i) acc[i][q] = S::fma(av[i], bv, acc[i][q]);
            }
        }
    for (std::size_t i = 0; i < MR; ++i)
        for (std::size_t q = 0; q < jn; ++q) {
            alignas(64) float lanes[L];
            S::store(lanes, acc[i][q]);
            float sum = 0;
            for (std::size_t l = 0; l < L; ++l) sum += lanes[l];
            for (std::size_t kk = kv; kk < K; ++kk)
                sum = std::fma(A[i * lda + kk], g[kv * JB + q * (K - kv) + (kk - kv)].widen(), sum);
            float& c = C[i * ldc + j + q];
            c = accumulate ? c + sum : sum;
        }
}

#endif

/// Rows [r0, r1) of A (in blocks of bf16_block_rows) against the groups of columns [j0, j1),
/// chunk by chunk of rows, each chunk's epilogue after its last group.
inline void bf16_rows(std::size_t r0, std::size_t r1, std::size_t K, const float* A, std::size_t lda,
                      const bf16* packed, float* C, std::size_t ldc, bool accumulate, tile_epilogue<float> ep,
                      std::size_t j0, std::size_t j1) {
    constexpr std::size_t JB = 4, R = bf16_block_rows;
    for (std::size_t c0 = r0; c0 < r1; c0 += bf16_chunk_rows) {
        const std::size_t c1 = std::min(r1, c0 + bf16_chunk_rows);
        for (std::size_t j = j0; j < j1; j += JB) {
            const std::size_t jn = std::min(JB, j1 - j);
            for (std::size_t i = c0; i < c1; i += R) {
                const float* a = A + i * lda;
                float* c = C + i * ldc;
                switch (std::min(R, c1 - i)) {
                    case 1: bf16_group<1>(K, a, lda, packed, j, jn, c, ldc, accumulate); break;
#if defined(__AVX512F__)
                    case 2: bf16_group<2>(K, a, lda, packed, j, jn, c, ldc, accumulate); break;
                    case 3: bf16_group<3>(K, a, lda, packed, j, jn, c, ldc, accumulate); break;
#endif
                    default: bf16_group<R>(K, a, lda, packed, j, jn, c, ldc, accumulate); break;
                }
            }
        }
        ep(c0, j0, C + c0 * ldc + j0, ldc, c1 - c0, j1 - j0);
    }
}

}  // namespace detail

/// C = A·Bᵀ (or C += ...) for M rows, B packed by pack_dot_bf16(N, K, ...), then the
/// epilogue.
template <class Epilogue = epilogue::none>
void gemm_packed_bf16(std::size_t M, std::size_t N, std::size_t K, const float* A, std::size_t lda,
                      const bf16* packed, float* C, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {},
                      thread_pool& pool = cpu_pool()) {
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    const detail::tile_epilogue<float> e = detail::erase_epilogue<float>(ep);
    if (K == 0) return detail::gemm_empty(M, N, C, ldc, accumulate, e);
#if defined(__AVX512F__)
    if (M <= 4) {  // gemm_dot itself: the float pack's arithmetic, its thread split and walk order
        const detail::dot_b<float, true, bf16> b{packed, detail::dot_b<float, true, bf16>::group_stride(K), K};
        return detail::gemm_dot_m(M, N, K, A, lda, b, C, ldc, accumulate, e, pool);
    }
#endif
    constexpr std::size_t JB = 4;
    const std::size_t groups = (N + JB - 1) / JB;
    if (pool.size() == 1 || N * K * sizeof(bf16) <= detail::bf16_split_bytes || groups < 2) {
        detail::bf16_rows(0, M, K, A, lda, packed, C, ldc, accumulate, e, 0, N);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const std::size_t j0 = std::min(N, detail::split_even(groups, n, t) * JB);
        const std::size_t j1 = std::min(N, detail::split_even(groups, n, t + 1) * JB);
        if (j0 < j1) detail::bf16_rows(0, M, K, A, lda, packed, C, ldc, accumulate, e, j0, j1);
    });
}

}  // namespace ctdl::inline CTDL_ISA_NS::cpu_kernels
