#pragma once
// The dot-product paths of the cpu GEMM: C = A·Bᵀ with both operands contiguous along k,
// computed as dot products straight from memory, nothing packed per call.
//
//   few rows     M ≤ 4 (batch-1 inference): gemm_dot, from B as it is or from B packed once
//                (pack_dot / gemm_packed: a frozen model's weights)
//   few columns  N ≤ 16 (a classifier's last layer, whose weights sit in L1): gemm_narrow
//
// Each element's arithmetic is fixed by K alone (lane partial sums by FMA in k order, a
// fixed lane reduction, the K mod w tail in order), so results never depend on the thread
// count, on where a block lies, or on whether B was packed.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../../core/bf16.hpp"
#include "../epilogue.hpp"
#include "../pass_count.hpp"
#include "gemm_epilogue.hpp"
#include "gemm_pack.hpp"
#include "gemm_simd.hpp"
#include "intrinsic_warnings.hpp"
#include "pool.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {
namespace detail {

/// Work (multiply-adds) up to which a product runs on the calling thread alone.
inline constexpr std::size_t serial_work = std::size_t{1} << 18;

/// B bytes up to which the few-row dot-product path walks B backwards every other call
/// (an L2 of this machine's cores; see gemm_dot).
inline constexpr std::size_t dot_reverse_bytes = std::size_t{1} << 20;

/// B bytes up to which the few-row dot-product path (M <= 4) runs on the calling thread alone.
inline constexpr std::size_t dot_split_bytes = std::size_t{64} << 10;

/// n parts of [0, count) of equal size (±1): part p is [split_even(count, n, p), split_even(count, n, p+1)).
constexpr std::size_t split_even(std::size_t count, std::size_t parts, std::size_t p) {
    return p * (count / parts) + std::min(p, count % parts);
}

/// Work (multiply-adds) up to which a product that packs nothing runs on the calling thread
/// alone: a thread's share then costs only its FMAs, so splitting pays from ~0.25 us of work
/// (64×256×10 on 2 threads: 1.11 us, serial 1.30 us; handing a job to the pool ~0.3 us).
inline constexpr std::size_t serial_work_unpacked = serial_work / 4;

/// Runs fn(r0, r1) over row blocks [r0, r1) of [0, M) cut at multiples of R: on the calling
/// thread when the product is small (work multiply-adds ≤ serial), else one contiguous
/// share of the blocks per thread of the pool.
template <std::size_t R, class F>
void split_rows(std::size_t M, std::size_t work, std::size_t serial, thread_pool& pool, const F& fn) {
    const std::size_t blocks = (M + R - 1) / R;
    if (pool.size() == 1 || work <= serial || blocks < 2) {
        fn(std::size_t{0}, M);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const std::size_t r0 = std::min(M, split_even(blocks, n, t) * R), r1 = std::min(M, split_even(blocks, n, t + 1) * R);
        if (r0 < r1) fn(r0, r1);
    });
}

/// K = 0: C = 0 (or unchanged), then the epilogue.
template <class T>
void gemm_empty(std::size_t M, std::size_t N, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep) {
    if (!accumulate)
        for (std::size_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, T(0));
    ep(0, 0, C, ldc, M, N);
}

#if defined(__AVX512F__)
CTDL_INTRINSIC_WARNINGS_OFF
/// Lane sums of `width` registers at once, r[l] = Σ lanes of v[l], by a transposing tree of
/// interleaves and adds. Every v[l] goes through the same tree (only the lane it sits in
/// differs, and a + b = b + a exactly), so a sum does not depend on l.
inline __m512 lane_sums(__m512 (&v)[16]) {
    __m512 s1[8], s2[4];
    for (int p = 0; p < 8; ++p)  // [a0+a2, b0+b2, a1+a3, b1+b3] per 128-bit chunk
        s1[p] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_ps(v[2 * p], v[2 * p + 1]));
    for (int q = 0; q < 4; ++q) {  // [a, b, c, d] per chunk: each the sum of its 4 lanes there
        const __m512d x = _mm512_castps_pd(s1[2 * q]), y = _mm512_castps_pd(s1[2 * q + 1]);
        s2[q] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // Chunks: (c0 + c2) + (c1 + c3), four registers to a chunk.
    const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[0], s2[1], 0x88), _mm512_shuffle_f32x4(s2[0], s2[1], 0xdd));
    const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(s2[2], s2[3], 0x88), _mm512_shuffle_f32x4(s2[2], s2[3], 0xdd));
    return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xdd));
}

inline __m512d lane_sums(__m512d (&v)[8]) {
    __m512d s1[4];
    for (int p = 0; p < 4; ++p)  // [a0+a1, b0+b1] per 128-bit chunk
        s1[p] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * p], v[2 * p + 1]), _mm512_unpackhi_pd(v[2 * p], v[2 * p + 1]));
    const __m512d u0 = _mm512_add_pd(_mm512_shuffle_f64x2(s1[0], s1[1], 0x88), _mm512_shuffle_f64x2(s1[0], s1[1], 0xdd));
    const __m512d u1 = _mm512_add_pd(_mm512_shuffle_f64x2(s1[2], s1[3], 0x88), _mm512_shuffle_f64x2(s1[2], s1[3], 0xdd));
    return _mm512_add_pd(_mm512_shuffle_f64x2(u0, u1, 0x88), _mm512_shuffle_f64x2(u0, u1, 0xdd));
}

/// Narrow C = A·Bᵀ (N ≤ narrow_n; a classifier's last layer, whose weights sit in L1) as dot
/// products of rows of A with rows of B, both contiguous along k: nothing is packed or
/// transposed. Blocks of R rows × JB columns, R·JB = width accumulator registers; each
/// element is
///     c[i, j] = lane_sums( Σ_{k0 by w} a[i, k0:k0+w] ⊙ b[j, k0:k0+w] )
/// (lane partial sums by FMA, k ascending, the last partial vector zero-filled, then the
/// fixed lane tree), wherever its block lies, so results never depend on the thread count.
/// Computes rows [r0, r1), then the epilogue over each of them.
template <class T, std::size_t R>
void gemm_narrow_rows(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                      std::size_t ldb, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep, std::size_t r0,
                      std::size_t r1) {
    using S = simd<T>;
    using V = zmm<T>;
    using reg = typename S::reg;
    constexpr std::size_t W = S::width, JB = W / R;
    static_assert(R * JB == W);
    const std::size_t kv = K / W * W;
    const __mmask16 tail = static_cast<__mmask16>((1u << (K - kv)) - 1);
    __mmask16 all = 0xffff;
    __asm__("" : "+k"(all));  // opaque to the compiler (see step)
    for (std::size_t i0 = r0; i0 < r1; i0 += R) {
        const std::size_t rn = std::min(R, r1 - i0);
        const T* a[R];
        for (std::size_t i = 0; i < R; ++i) a[i] = A + std::min(i0 + i, M - 1) * lda;  // past the end: recomputed, discarded
        for (std::size_t j0 = 0; j0 < N; j0 += JB) {
            const std::size_t jn = std::min(JB, N - j0);
            const T* b[JB];
            for (std::size_t q = 0; q < JB; ++q) b[q] = B + std::min(j0 + q, N - 1) * ldb;
            reg acc[W];
            for (std::size_t l = 0; l < W; ++l) acc[l] = S::zero();
            // One k-step: the R rows of A into registers, then each of the JB columns of B once:
            // R + JB loads for R·JB FMAs. (A row loaded into each FMA that uses it would be R·JB
            // loads, and loads are the bottleneck; the rows are read under an all-ones mask the
            // compiler cannot see through, which keeps them plain register loads.)
            auto step = [&](std::size_t k, __mmask16 m) {
                reg av[R];
                for (std::size_t i = 0; i < R; ++i) av[i] = V::load(a[i] + k, m);
                for (std::size_t q = 0; q < JB; ++q) {
                    const reg bv = V::load(b[q] + k, m);
                    for (std::size_t i = 0; i < R; ++i) acc[i * JB + q] = S::fma(av[i], bv, acc[i * JB + q]);
                }
            };
            for (std::size_t k = 0; k < kv; k += W) step(k, all);
            if (kv < K) step(kv, tail);
            // r[i·JB + q] = c[i0 + i, j0 + q]: row i's sums, moved to lanes 0..JB-1, stored
            // straight from the register (a store to the stack and scalar reloads stall).
            const reg r = lane_sums(acc);
            const __mmask16 cols = static_cast<__mmask16>((1u << jn) - 1);
            for (std::size_t i = 0; i < rn; ++i) {
                T* c = C + (i0 + i) * ldc + j0;
                reg v = V::lanes_from(r, i * JB);
                if (accumulate) v = S::add(v, V::load(c, cols));
                V::store(c, cols, v);
            }
        }
        ep(i0, 0, C + i0 * ldc, ldc, rn, N);
    }
}

/// Columns up to which C = A·Bᵀ with more than 4 rows takes the dot-product path.
inline constexpr std::size_t narrow_n = 16;

/// Narrow C = A·Bᵀ: blocks of rows (R = width/2 rows × 2 columns), split over the threads.
template <class T>
void gemm_narrow(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                 std::size_t ldb, T* C, std::size_t ldc, bool accumulate, tile_epilogue<T> ep, thread_pool& pool) {
    constexpr std::size_t R = simd<T>::width / 2;
    split_rows<R>(M, M * N * K, serial_work_unpacked, pool, [&](std::size_t r0, std::size_t r1) {
        gemm_narrow_rows<T, R>(M, N, K, A, lda, B, ldb, C, ldc, accumulate, ep, r0, r1);
    });
}

/// One step of a dot product's K mod w tail: s + a·b with one rounding, whatever the
/// compiler's contraction setting.
template <class T>
inline T dot_tail_step(T a, T b, T s) {
    return std::fma(a, b, s);
}

/// 16 bf16 at p widened exactly to floats: each zero-extended to 32 bits and shifted up by 16.
inline __m512 widen_bf16(const bf16* p) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/// Where gemm_dot_rows finds B: op(B)ᵀ row-major with stride ldb (B[j·ldb + k]), or packed
/// once by pack_dot (a frozen model's weights): each group of JB = 4 columns contiguous,
/// whole k-steps first ([step][column][w lanes]: one sequential stream for the group), then
/// each column's K mod w tail. The arithmetic is the same for both. A pack may hold its
/// elements as Wt = bf16 (pack_dot_bf16, exec/cpu/gemm_bf16.hpp), widened exactly to T as
/// they are loaded; the arithmetic is then that of a float pack of the widened values.
template <class T, bool Packed, class Wt = T>
struct dot_b {
    static_assert(std::is_same_v<Wt, T> || (Packed && std::is_same_v<T, float> && std::is_same_v<Wt, bf16>),
                  "dot_b: a pack holds T, or bf16 widened to float");
    static constexpr bool packed = Packed;
    static constexpr std::size_t JB = 4, W = simd<T>::width;
    /// How far ahead of a packed stream the batch-1 kernel prefetches, and how many lines at
    /// each k-step (of the 4 lines of a float step, 1; of the 2 of a bf16 step, both).
    /// Measured on one thread, batch-1 products from 48 [3072, 768] packs: float 4 KiB and
    /// one line; bf16 31 GB/s at 4 KiB and one line, 33-35 at 8-12 KiB, 36-38 with both
    /// lines at 8-16 KiB (float there: 31-34).
    static constexpr std::size_t prefetch_bytes = std::is_same_v<Wt, bf16> ? 8192 : 4096;
    static constexpr std::size_t prefetch_lines = std::is_same_v<Wt, bf16> ? 2 : 1;
    /// Elements between two packed groups (64-byte multiples, so whole steps stay aligned).
    static constexpr std::size_t group_stride(std::size_t K) {
        constexpr std::size_t line = 64 / sizeof(Wt);
        return (JB * K + line - 1) / line * line;
    }
    const Wt* B;
    std::size_t ld;  // ldb, or the packed group stride
    std::size_t K;
    /// Where the group of columns starting at j lies: JB row pointers (missing columns, past
    /// N: column j again), or the packed group.
    struct group_ptrs {
        const Wt* p[Packed ? 1 : JB];
    };
    group_ptrs group(std::size_t j, std::size_t jn) const {
        group_ptrs g;
        if constexpr (Packed) g.p[0] = B + j / JB * ld;
        else
            for (std::size_t q = 0; q < JB; ++q) g.p[q] = B + (j + (q < jn ? q : 0)) * ld;
        return g;
    }
    /// Where op(B)[k : k + w, j + q] lies, for a whole step k (< K / w · w).
    static const Wt* step(const group_ptrs& g, std::size_t q, std::size_t k) {
        if constexpr (Packed) return g.p[0] + k * JB + q * W;
        else return g.p[q] + k;
    }
    /// op(B)[k : k + w, j + q] as a register of T.
    static typename simd<T>::reg load(const group_ptrs& g, std::size_t q, std::size_t k) {
        if constexpr (std::is_same_v<Wt, bf16>) return widen_bf16(step(g, q, k));
        else return simd<T>::load(step(g, q, k));
    }
    /// op(B)[kk, j + q] for kk in the tail [K / w · w, K).
    T tail(const group_ptrs& g, std::size_t q, std::size_t kk) const {
        const std::size_t kv = K / W * W;
        const Wt* p;
        if constexpr (Packed) p = g.p[0] + kv * JB + q * (K - kv) + (kk - kv);
        else p = g.p[q] + kk;
        if constexpr (std::is_same_v<Wt, bf16>) return p->widen();
        else return *p;
    }
};

/// Batch-1 style forward, C = A·Bᵀ with M ≤ 4 rows (both operands contiguous along k):
/// dot products straight from memory (or from B packed by pack_dot). Columns in groups of
/// JB = 4, each with P accumulators per row that take the k-steps in turn (P = 4 / MR: at
/// least 16 independent FMA chains). Each element is
///     c[i, j] = hsum_lanes( (acc_0 + acc_1) + ... + acc_{P-1} ) + Σ_{tail k} a[i,k]·b[j,k]
/// where acc_p = Σ_{k-steps s ≡ p mod P, ascending} a[i, s·w : s·w+w] ⊙ b[j, s·w : s·w+w]
/// (for P > 1 the steps past the last whole round of P go to acc_0), a fixed lane reduction,
/// then the K mod w tail in order: the same whatever the thread count, packed or not.
/// dot_group computes the MR rows at A (row stride lda) of the group of columns at j (jn of
/// them real) into C (row stride ldc), without the epilogue.
template <class T, std::size_t MR, class Bsrc>
inline void dot_group(std::size_t K, const T* A, std::size_t lda, const Bsrc& bsrc,
                      const typename Bsrc::group_ptrs& gb, std::size_t j, std::size_t jn, T* C, std::size_t ldc,
                      bool accumulate) {
    using S = simd<T>;
    using reg = typename S::reg;
    constexpr std::size_t W = S::width, JB = Bsrc::JB, P = 4 / MR;
    const std::size_t kv = K / W * W;
    reg acc[P][MR][JB];
    for (auto& ap : acc)
        for (auto& ai : ap)
            for (auto& a : ai) a = S::zero();
    // One k-step into accumulator set p. The same FMAs either way; the order of the loads
    // is what GCC 12 compiles best for each source (measured, MLP batch 1: from rows of B,
    // its columns first, 6.6 us; from the pack, the rows of A first, 5.9 us; the other
    // way round 7.7 us and a spilling loop).
    auto step = [&](std::size_t p, std::size_t k) {
        if constexpr (Bsrc::packed) {
            if constexpr (MR == 1)
                for (std::size_t l = 0; l < Bsrc::prefetch_lines; ++l)
                    _mm_prefetch(reinterpret_cast<const char*>(bsrc.step(gb, 0, k)) + Bsrc::prefetch_bytes + 64 * l,
                                 _MM_HINT_T0);
            reg av[MR];
            for (std::size_t i = 0; i < MR; ++i) av[i] = S::load(A + i * lda + k);
            for (std::size_t q = 0; q < JB; ++q) {
                const reg bv = bsrc.load(gb, q, k);
                for (std::size_t i = 0; i < MR; ++i) acc[p][i][q] = S::fma(av[i], bv, acc[p][i][q]);
            }
        } else {
            reg bv[JB];
            for (std::size_t q = 0; q < JB; ++q) bv[q] = bsrc.load(gb, q, k);
            for (std::size_t i = 0; i < MR; ++i) {
                const reg av = S::load(A + i * lda + k);
                for (std::size_t q = 0; q < JB; ++q) acc[p][i][q] = S::fma(av, bv[q], acc[p][i][q]);
            }
        }
    };
    std::size_t k = 0;
    for (; k + P * W <= kv; k += P * W)
        for (std::size_t p = 0; p < P; ++p) step(p, k + p * W);
    for (; k < kv; k += W) step(0, k);
    for (std::size_t i = 0; i < MR; ++i)
        for (std::size_t q = 0; q < jn; ++q) {
            reg v = acc[0][i][q];
            for (std::size_t p = 1; p < P; ++p) v = S::add(v, acc[p][i][q]);
            T sum;
            if constexpr (std::is_same_v<T, float>) sum = _mm512_reduce_add_ps(v);
            else sum = _mm512_reduce_add_pd(v);
            for (std::size_t kk = kv; kk < K; ++kk) sum = dot_tail_step(A[i * lda + kk], bsrc.tail(gb, q, kk), sum);
            T& c = C[i * ldc + j + q];
            c = accumulate ? c + sum : sum;
        }
}

/// dot_group over the groups of columns [j0, j1), in reverse order of groups if `reverse`,
/// then the epilogue over the row segments.
template <class T, std::size_t MR, class Bsrc>
void gemm_dot_rows(std::size_t K, const T* A, std::size_t lda, const Bsrc& bsrc, T* C, std::size_t ldc,
                   bool accumulate, tile_epilogue<T> ep, std::size_t j0, std::size_t j1, bool reverse) {
    constexpr std::size_t JB = Bsrc::JB;
    const std::size_t groups = (j1 - j0 + JB - 1) / JB;
    for (std::size_t g = 0; g < groups; ++g) {
        const std::size_t j = j0 + (reverse ? groups - 1 - g : g) * JB, jn = std::min(JB, j1 - j);
        dot_group<T, MR>(K, A, lda, bsrc, bsrc.group(j, jn), j, jn, C, ldc, accumulate);
    }
    ep(0, j0, C + j0, ldc, MR, j1 - j0);
}

CTDL_INTRINSIC_WARNINGS_ON

/// Batch-1 C = A·Bᵀ (M = MR ≤ 4): its columns split over the threads.
template <class T, std::size_t MR, class Bsrc>
void gemm_dot(std::size_t N, std::size_t K, const T* A, std::size_t lda, const Bsrc& B, T* C, std::size_t ldc,
              bool accumulate, tile_epilogue<T> ep, thread_pool& pool) {
    constexpr std::size_t JB = Bsrc::JB;
    const std::size_t groups = (N + JB - 1) / JB;
    // Every other call walks B backwards. Inference streams the same weights over and over;
    // when they overflow L2 (one thread, 1.07 MB for the 784-256-256-10 MLP), a walk in
    // one direction evicts each line just before it is needed again, while alternating
    // walks start where the last one ended, in what L2 still holds. The order of the
    // column groups changes no result. Not for a B larger than an L2 itself (GPT-2's
    // layers, 1.2 MB and up): nothing of it is left in L2 to start from, and a backward walk
    // over the groups costs the stream its prefetches (each reaches 4 KiB ahead, into the
    // group just done). Measured on one thread, batch-1 products of 48 [3072, 768] packs
    // (453 MB in float): alternating, 12.7 GB/s from float packs and 9.2 from bf16 ones;
    // always forward, 23 and 29.
    static thread_local bool flip = false;
    const bool reverse = (flip = !flip) && N * K * sizeof(*B.B) <= dot_reverse_bytes;
    // Split by weight bytes, not by work: at batch 1 the work is small but B (the weights) is
    // streamed from cache; two threads hold half of B each in their own L2 (784×256 floats,
    // 800 KB, overflows one 1 MB L2 beside the next layer's weights). The split is static
    // (part t always gets the same columns), so each core keeps its half between calls.
    if (pool.size() == 1 || N * K * sizeof(*B.B) <= dot_split_bytes || groups < 2) {
        gemm_dot_rows<T, MR>(K, A, lda, B, C, ldc, accumulate, ep, 0, N, reverse);
        return;
    }
    pool.run([&](std::size_t t, std::size_t n) {
        const std::size_t j0 = std::min(N, split_even(groups, n, t) * JB), j1 = std::min(N, split_even(groups, n, t + 1) * JB);
        if (j0 < j1) gemm_dot_rows<T, MR>(K, A, lda, B, C, ldc, accumulate, ep, j0, j1, reverse);
    });
}

/// gemm_dot for M = 1..4 rows.
template <class T, class Bsrc>
void gemm_dot_m(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const Bsrc& B, T* C,
                std::size_t ldc, bool accumulate, tile_epilogue<T> ep, thread_pool& pool) {
    switch (M) {
        case 1: return gemm_dot<T, 1>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        case 2: return gemm_dot<T, 2>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        case 3: return gemm_dot<T, 3>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
        default: return gemm_dot<T, 4>(N, K, A, lda, B, C, ldc, accumulate, ep, pool);
    }
}
#endif

}  // namespace detail

// ---------------------------------------------------------------- packed small-batch B
//
// A frozen model runs the same weights again and again; at batch ≤ 4 the forward GEMM is
// a stream over them. Packed once (pack_dot), each group of 4 output columns is one
// contiguous stream in the order the kernel reads it: measured on the MLP's 784×256 and
// 256×256 weights, ~1.5× the read rate of four row streams at stride K. The arithmetic is
// gemm_dot's, so a packed product equals the unpacked one bit for bit.

/// Whether gemm_packed exists for T on this ISA.
template <class T>
inline constexpr bool packs_small_batch =
#if defined(__AVX512F__)
    std::is_same_v<T, float> || std::is_same_v<T, double>;
#else
    false;
#endif

/// Rows (M) up to which gemm_packed runs.
inline constexpr std::size_t packed_max_rows = 4;

/// Elements pack_dot writes for B = op(B)ᵀ of N rows × K (a linear layer's weight [N, K]).
template <class T>
constexpr std::size_t packed_size(std::size_t N, std::size_t K) {
    constexpr std::size_t JB = 4;
    return (N + JB - 1) / JB * ((JB * K + 15) / 16 * 16);
}

#if defined(__AVX512F__)
/// Packs B [N, K] (row stride ldb) for gemm_packed: group g = columns 4g..4g+3 at
/// g · group_stride(K): its whole k-steps as [step][column][w], then each column's tail.
/// Columns past N repeat the group's first column.
template <class T>
void pack_dot(std::size_t N, std::size_t K, const T* B, std::size_t ldb, T* packed) {
    static_assert(packs_small_batch<T>);
    using db = detail::dot_b<T, true>;
    constexpr std::size_t JB = db::JB, W = db::W;
    const std::size_t kv = K / W * W, gs = db::group_stride(K);
    for (std::size_t j = 0; j < N; j += JB) {
        T* g = packed + j / JB * gs;
        const std::size_t jn = std::min(JB, N - j);
        auto col = [&](std::size_t q) { return B + (j + (q < jn ? q : 0)) * ldb; };
        for (std::size_t k = 0; k < kv; k += W)
            for (std::size_t q = 0; q < JB; ++q) std::copy_n(col(q) + k, W, g + k * JB + q * W);
        for (std::size_t q = 0; q < JB; ++q) std::copy_n(col(q) + kv, K - kv, g + kv * JB + q * (K - kv));
        std::fill(g + JB * K, g + gs, T(0));
    }
}

/// C = A·Bᵀ (or C += ...), B packed by pack_dot(N, K, ...), then the epilogue; meant for
/// M ≤ packed_max_rows rows (more are done 4 at a time). Equal bit for bit to gemm<trans::n, trans::t> on the unpacked B.
template <class T, class Epilogue = epilogue::none>
void gemm_packed(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* packed, T* C,
                 std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}, thread_pool& pool = cpu_pool()) {
    static_assert(packs_small_batch<T>);
    record_pass(pass::gemm);
    if (M == 0 || N == 0) return;
    if (K == 0) return detail::gemm_empty(M, N, C, ldc, accumulate, detail::erase_epilogue<T>(ep));
    const detail::dot_b<T, true> b{packed, detail::dot_b<T, true>::group_stride(K), K};
    for (std::size_t r = 0; r < M; r += 4) {  // more than 4 rows: blocks of 4 (correct, not fast)
        auto rows_from_r = [&](std::size_t row, std::size_t col0, T* c, std::size_t len) { ep(r + row, col0, c, len); };
        detail::gemm_dot_m(std::min<std::size_t>(4, M - r), N, K, A + r * lda, lda, b, C + r * ldc, ldc, accumulate,
                           detail::erase_epilogue<T>(rows_from_r), pool);
    }
}
#endif

}  // namespace ctdl::cpu_kernels
