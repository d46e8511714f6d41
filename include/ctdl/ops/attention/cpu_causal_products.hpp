#pragma once
// Products with a causal (lower-triangular) [n, n] operand, for the cpu attention
// (cpu_tiles.hpp): per (batch, head) task, n = seq, rows of hd values at a stride.
//
//   lower_scores            C_ij = α A_i · B_j          for the 16-key blocks j0 ≤ j < j0 + 16 with j0 ≤ i
//   lower_times             C_i  = Σ_{j ≤ i} L_ij B_j    (C = L B)
//   lower_transposed_times  C_j  = Σ_{i ≥ j} L_ij B_i    (C = Lᵀ B)
//
// Each is one kernel, tile: an R-row block of the result held in vector registers gets
// C = α Σ_k a(r, k) B_k, B_k a contiguous row segment, a(r, k) broadcast. For the scores the
// rows B_k are columns of B: a block of 16 keys is first copied transposed into a small
// stack buffer, so A_i · B_j for 16 keys j is one vector per term. The upper triangle is
// skipped in whole blocks (16 keys for the scores, R rows for the others); inside a block
// the products read L above the diagonal, which must be zero there (up to the end of the
// diagonal's block of 16), and the scores write past it (the caller masks them).
// Every sum runs in k order, so a row of a result does not depend on which tile computed it.
#include <cmath>
#include <cstddef>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "../../exec/cpu/gemm_simd.hpp"
#include "../../exec/isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::causal {

using detail::simd;

/// One lane of T with simd<T>'s interface: the columns a vector does not fill. Its fma is
/// an explicit fma where the target has one: left to the compiler, a · b + c is fused in
/// some inlined copies and not in others, and a row would then depend on the tile it was
/// computed in.
template <class T>
struct one_lane {
    using reg = T;
    static constexpr std::size_t width = 1;
    static reg zero() { return T(0); }
    static reg load(const T* p) { return *p; }
    static void store(T* p, reg v) { *p = v; }
    static reg set1(T v) { return v; }
#if defined(__FMA__)
    static reg fma(reg a, reg b, reg c) { return std::fma(a, b, c); }
#else
    static reg fma(reg a, reg b, reg c) { return a * b + c; }
#endif
};

inline constexpr std::size_t tile_rows = 8;      // R: rows of a result tile (divides key_block)
inline constexpr std::size_t key_block = 16;     // keys per transposed block of B
inline constexpr std::size_t depth_block = 128;  // columns per transposed block (on the stack: × key_block)

/// C[r, 0 .. cols) (+)= α Σ_{k0 ≤ k < k1} a[r·sr + k·sk] · b[k·ldb + 0 .. cols) for r < R,
/// cols ≤ N · S::width; the R × N accumulators stay in registers. b's rows must be
/// readable for N · S::width elements.
template <class S, std::size_t R, std::size_t N, class T>
inline void tile(std::size_t k0, std::size_t k1, const T* a, std::size_t sr, std::size_t sk, const T* b,
                 std::size_t ldb, T alpha, bool add, T* c, std::size_t ldc, std::size_t cols) {
    using reg = typename S::reg;
    constexpr std::size_t w = S::width;
    reg acc[R][N];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (std::size_t v = 0; v < N; ++v) acc[r][v] = S::zero();
    for (std::size_t k = k0; k < k1; ++k) {
        reg bv[N];
#pragma GCC unroll 16
        for (std::size_t v = 0; v < N; ++v) bv[v] = S::load(b + k * ldb + v * w);
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r) {
            const reg av = S::set1(a[r * sr + k * sk]);
#pragma GCC unroll 16
            for (std::size_t v = 0; v < N; ++v) acc[r][v] = S::fma(av, bv[v], acc[r][v]);
        }
    }
    const reg al = S::set1(alpha);
    if (cols == N * w) {
#pragma GCC unroll 16
        for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
            for (std::size_t v = 0; v < N; ++v) {
                T* p = c + r * ldc + v * w;
                S::store(p, S::fma(acc[r][v], al, add ? S::load(p) : S::zero()));
            }
        return;
    }
    alignas(64) T tmp[R * N * w];
#pragma GCC unroll 16
    for (std::size_t r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (std::size_t v = 0; v < N; ++v) S::store(tmp + (r * N + v) * w, S::fma(acc[r][v], al, S::zero()));
    for (std::size_t r = 0; r < R; ++r)
        for (std::size_t j = 0; j < cols; ++j) {
            T& out = c[r * ldc + j];
            out = add ? out + tmp[r * N * w + j] : tmp[r * N * w + j];
        }
}

/// f.template operator()<S, N>(c0) over the columns [0, n): chunks of two vectors
/// (N = 2), then one vector, then single lanes (S = one_lane<T>).
template <class T, class F>
inline void for_column_chunks(std::size_t n, const F& f) {
    using S = simd<T>;
    constexpr std::size_t w = S::width;
    std::size_t c0 = 0;
    for (; c0 + 2 * w <= n; c0 += 2 * w) f.template operator()<S, 2>(c0);
    if (w > 1 && c0 + w <= n) {
        f.template operator()<S, 1>(c0);
        c0 += w;
    }
    for (; c0 < n; ++c0) f.template operator()<one_lane<T>, 1>(c0);
}

#if defined(__AVX512F__)
/// dst[k · 16 + l] = src[l · lds + k] for k, l < 16: a 16 × 16 transpose in registers
/// (32-bit, then 64-bit interleaves within 128-bit lanes, then two rounds of 128-bit lane
/// shuffles), 64 shuffles where scalar copies take 256 loads and stores. The masked forms
/// with a full mask are the plain instructions; the unmasked intrinsics trip g++ 12's
/// -Wmaybe-uninitialized (their _mm512_undefined source).
inline void transpose16(const float* src, std::size_t lds, float* dst) {
    constexpr __mmask16 all = 0xFFFF;
    const auto lo_ps = [](__m512 a, __m512 b) { return _mm512_mask_unpacklo_ps(a, all, a, b); };
    const auto hi_ps = [](__m512 a, __m512 b) { return _mm512_mask_unpackhi_ps(a, all, a, b); };
    const auto lo_pd = [](__m512 a, __m512 b) {
        const __m512d x = _mm512_castps_pd(a);
        return _mm512_castpd_ps(_mm512_mask_unpacklo_pd(x, __mmask8(0xFF), x, _mm512_castps_pd(b)));
    };
    const auto hi_pd = [](__m512 a, __m512 b) {
        const __m512d x = _mm512_castps_pd(a);
        return _mm512_castpd_ps(_mm512_mask_unpackhi_pd(x, __mmask8(0xFF), x, _mm512_castps_pd(b)));
    };
    // lanes (0, 2) of a, then (0, 2) of b; and lanes (1, 3) of each
    const auto even = [](__m512 a, __m512 b) { return _mm512_mask_shuffle_f32x4(a, all, a, b, 0x88); };
    const auto odd = [](__m512 a, __m512 b) { return _mm512_mask_shuffle_f32x4(a, all, a, b, 0xDD); };
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (std::size_t i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * lds);
#pragma GCC unroll 8
    for (std::size_t i = 0; i < 16; i += 2) {  // lane q of t[i]: r_i[4q], r_i+1[4q], r_i[4q+1], r_i+1[4q+1]
        t[i] = lo_ps(r[i], r[i + 1]);
        t[i + 1] = hi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (std::size_t g = 0; g < 16; g += 4) {  // lane q of r[g + c]: rows g .. g+3 at column 4q + c
        r[g] = lo_pd(t[g], t[g + 2]);
        r[g + 1] = hi_pd(t[g], t[g + 2]);
        r[g + 2] = lo_pd(t[g + 1], t[g + 3]);
        r[g + 3] = hi_pd(t[g + 1], t[g + 3]);
    }
#pragma GCC unroll 4
    for (std::size_t c = 0; c < 4; ++c) {  // column 4q + c = lanes q of r[c], r[4 + c], r[8 + c], r[12 + c]
        const __m512 v0 = even(r[c], r[4 + c]), v1 = odd(r[c], r[4 + c]);
        const __m512 v2 = even(r[8 + c], r[12 + c]), v3 = odd(r[8 + c], r[12 + c]);
        _mm512_storeu_ps(dst + (0 + c) * 16, even(v0, v2));
        _mm512_storeu_ps(dst + (4 + c) * 16, even(v1, v3));
        _mm512_storeu_ps(dst + (8 + c) * 16, odd(v0, v2));
        _mm512_storeu_ps(dst + (12 + c) * 16, odd(v1, v3));
    }
}
#endif

/// bt[k · 16 + l] = b[l · ldb + k] for k < depth, l < keys; zero for keys ≤ l < 16.
template <class T>
void transpose_keys(const T* b, std::size_t ldb, std::size_t keys, std::size_t depth, T* bt) {
    constexpr std::size_t kb = key_block;
    std::size_t k0 = 0;
#if defined(__AVX512F__)
    if constexpr (std::is_same_v<T, float>)
        if (keys == kb)
            for (; k0 + kb <= depth; k0 += kb) transpose16(b + k0, ldb, bt + k0 * kb);
#endif
    for (std::size_t l = 0; l < kb; ++l)
        for (std::size_t k = k0; k < depth; ++k) bt[k * kb + l] = l < keys ? b[l * ldb + k] : T(0);
}

/// C[i, j] = α A_i · B_j (rows of hd values, strides lda, ldb) for every key block
/// j0 ≤ j < j0 + 16 with j0 ≤ i; C is [n, n]. Entries with j > i inside the block of the
/// diagonal are written too.
template <class T>
void lower_scores(std::size_t n, std::size_t hd, const T* a, std::size_t lda, const T* b, std::size_t ldb, T alpha,
                  T* c) {
    using S = simd<T>;
    constexpr std::size_t kb = key_block, nk = kb / S::width;
    alignas(64) T bt[depth_block * kb];  // bt[k · kb + l] = B[j0 + l, c0 + k]
    for (std::size_t j0 = 0; j0 < n; j0 += kb) {
        const std::size_t keys = n - j0 < kb ? n - j0 : kb;
        for (std::size_t c0 = 0; c0 < hd; c0 += depth_block) {
            const std::size_t depth = hd - c0 < depth_block ? hd - c0 : depth_block;
            transpose_keys(b + j0 * ldb + c0, ldb, keys, depth, bt);
            std::size_t i0 = j0;
            for (; i0 + tile_rows <= n; i0 += tile_rows)
                tile<S, tile_rows, nk>(0, depth, a + i0 * lda + c0, lda, 1, bt, kb, alpha, c0 > 0, c + i0 * n + j0, n,
                                       keys);
            for (; i0 < n; ++i0)
                tile<S, 1, nk>(0, depth, a + i0 * lda + c0, lda, 1, bt, kb, alpha, c0 > 0, c + i0 * n + j0, n, keys);
        }
    }
}

/// C = L B: C_i = Σ_{j ≤ i} L_ij B_j for the lower-triangular [n, n] L (zero above the
/// diagonal), B rows of hd values (stride ldb), C rows stride ldc.
template <class T>
void lower_times(std::size_t n, std::size_t hd, const T* l, const T* b, std::size_t ldb, T* c, std::size_t ldc) {
    for_column_chunks<T>(hd, [&]<class S, std::size_t N>(std::size_t c0) {
        constexpr std::size_t cw = N * S::width;
        std::size_t i0 = 0;
        for (; i0 + tile_rows <= n; i0 += tile_rows)
            tile<S, tile_rows, N>(0, i0 + tile_rows, l + i0 * n, n, 1, b + c0, ldb, T(1), false, c + i0 * ldc + c0,
                                  ldc, cw);
        for (; i0 < n; ++i0)
            tile<S, 1, N>(0, i0 + 1, l + i0 * n, n, 1, b + c0, ldb, T(1), false, c + i0 * ldc + c0, ldc, cw);
    });
}

/// C = Lᵀ B: C_j = Σ_{i ≥ j} L_ij B_i, shapes as in lower_times.
template <class T>
void lower_transposed_times(std::size_t n, std::size_t hd, const T* l, const T* b, std::size_t ldb, T* c,
                            std::size_t ldc) {
    for_column_chunks<T>(hd, [&]<class S, std::size_t N>(std::size_t c0) {
        constexpr std::size_t cw = N * S::width;
        std::size_t j0 = 0;
        for (; j0 + tile_rows <= n; j0 += tile_rows)
            tile<S, tile_rows, N>(j0, n, l + j0, 1, n, b + c0, ldb, T(1), false, c + j0 * ldc + c0, ldc, cw);
        for (; j0 < n; ++j0)
            tile<S, 1, N>(j0, n, l + j0, 1, n, b + c0, ldb, T(1), false, c + j0 * ldc + c0, ldc, cw);
    });
}

}  // namespace ctdl::cpu_kernels::causal
