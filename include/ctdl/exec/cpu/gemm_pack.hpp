#pragma once
// Packing for the cpu GEMM (BLIS style).
//
// A block of op(A) (mc × kc) is copied into micro-panels of R rows: panel p holds
// op(A)[p·R + i, k] at [k·R + i], so the micro-kernel reads R consecutive values per k.
// A block of op(B) (kc × nc) is copied into micro-panels of R columns: panel p holds
// op(B)[k, p·R + j] at [k·R + j]. Rows/columns past the edge are zero, so edge tiles run
// the same kernel (the padding contributes exact zeros) and only their stores are clipped.
//
// Both are one routine: pack(x, rs, cs, rows, cols, R, dst) copies the rows × cols matrix
// x(i, k) = x[i·rs + k·cs] into panels of R "rows", with k the running (depth) index.
// op(A): i = row of C, k = depth.  op(B): i = column of C, k = depth.
#include <cstddef>
#include <cstring>
#include <type_traits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "intrinsic_warnings.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::detail {

#if defined(__AVX512F__)
CTDL_INTRINSIC_WARNINGS_OFF
// In-register transposes, r[i][k] → r[k][i]: three rounds of interleaves, each doubling
// the size of the blocks that are already in place (1 → 2 → 4 → 8 → 16 lanes).
inline void transpose_regs(__m512 (&r)[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; ++i) {  // 1×1 blocks of rows 2i, 2i+1
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int q = 0; q < 4; ++q) {  // 2×2 blocks
        const __m512d a = _mm512_castps_pd(t[4 * q]), b = _mm512_castps_pd(t[4 * q + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * q + 2]), d = _mm512_castps_pd(t[4 * q + 3]);
        r[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int h = 0; h < 2; ++h)  // 4×4 blocks (128-bit lanes)
        for (int i = 0; i < 4; ++i) {
            t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
            t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
        }
    for (int i = 0; i < 8; ++i) {  // 8×8 blocks
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
    }
}

inline void transpose_regs(__m512d (&r)[8]) {
    __m512d t[8];
    for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 2; ++i) {
            r[4 * h + i] = _mm512_shuffle_f64x2(t[4 * h + i], t[4 * h + 2 + i], 0x88);
            r[4 * h + 2 + i] = _mm512_shuffle_f64x2(t[4 * h + i], t[4 * h + 2 + i], 0xdd);
        }
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f64x2(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f64x2(r[i], r[4 + i], 0xdd);
    }
    for (int i = 0; i < 8; ++i) r[i] = t[i];
}

template <class T>
struct zmm;
template <>
struct zmm<float> {
    using reg = __m512;
    static constexpr std::size_t width = 16;
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
    static void store(float* p, __mmask16 m, reg v) { _mm512_mask_storeu_ps(p, m, v); }
    /// v's lanes first, first + 1, ... moved to lanes 0, 1, ... (wrapping around).
    static reg lanes_from(reg v, std::size_t first) {
        const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        return _mm512_permutexvar_ps(_mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(first))), v);
    }
};
template <>
struct zmm<double> {
    using reg = __m512d;
    static constexpr std::size_t width = 8;
    static reg zero() { return _mm512_setzero_pd(); }
    static reg load(const double* p, __mmask16 m) { return _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p); }
    static void store(double* p, __mmask16 m, reg v) { _mm512_mask_storeu_pd(p, static_cast<__mmask8>(m), v); }
    static reg lanes_from(reg v, std::size_t first) {
        const __m512i iota = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        return _mm512_permutexvar_pd(_mm512_add_epi64(iota, _mm512_set1_epi64(static_cast<long long>(first))), v);
    }
};

/// One panel of R "rows" (r of them real), each contiguous along k (x[i·rs + k]), written
/// depth-major: dst[k·R + i]. Squares of width × width go through registers.
template <std::size_t R, class T>
void pack_panel_transposed(const T* x, std::size_t rs, std::size_t r, std::size_t depth, T* dst) {
    using V = zmm<T>;
    constexpr std::size_t W = V::width;
    for (std::size_t g = 0; g < R; g += W) {  // groups of W rows of the panel
        const std::size_t gw = R - g < W ? R - g : W, gr = r > g ? (r - g < gw ? r - g : gw) : 0;
        const __mmask16 store_mask = static_cast<__mmask16>((1u << gw) - 1);
        for (std::size_t k0 = 0; k0 < depth; k0 += W) {
            const std::size_t kw = depth - k0 < W ? depth - k0 : W;
            const __mmask16 load_mask = static_cast<__mmask16>((1u << kw) - 1);
            typename V::reg v[W];
            for (std::size_t i = 0; i < W; ++i) v[i] = i < gr ? V::load(x + (g + i) * rs + k0, load_mask) : V::zero();
            transpose_regs(v);
            for (std::size_t k = 0; k < kw; ++k) V::store(dst + (k0 + k) * R + g, store_mask, v[k]);
        }
    }
}
CTDL_INTRINSIC_WARNINGS_ON
#endif

/// Panels of R along i, depth-major inside a panel: dst[p][k][r] = x[(p·R + r)·rs + k·cs].
/// `depth` = number of k. The contiguous direction of the source decides the loop order.
template <std::size_t R, class T>
void pack_panels(const T* x, std::size_t rs, std::size_t cs, std::size_t count, std::size_t depth, T* dst) {
    for (std::size_t p0 = 0; p0 < count; p0 += R) {
        const std::size_t r = count - p0 < R ? count - p0 : R;
        const T* src = x + p0 * rs;
        if (rs == 1) {
            // The panel's R values at each k are contiguous in the source: row copies.
            if (r == R) {
                for (std::size_t k = 0; k < depth; ++k) std::memcpy(dst + k * R, src + k * cs, R * sizeof(T));
            } else {
                for (std::size_t k = 0; k < depth; ++k) {
                    T* d = dst + k * R;
                    const T* s = src + k * cs;
                    std::size_t i = 0;
                    for (; i < r; ++i) d[i] = s[i];
                    for (; i < R; ++i) d[i] = T(0);
                }
            }
        } else {
#if defined(__AVX512F__)
            if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
                if (cs == 1) {
                    pack_panel_transposed<R>(src, rs, r, depth, dst);
                    dst += depth * R;
                    continue;
                }
            }
#endif
            // Each of the R source rows is contiguous along k: a transpose. Blocks of 8 k
            // keep the R source streams and the destination lines in L1.
            constexpr std::size_t kb = 8;
            std::size_t k0 = 0;
            for (; k0 + kb <= depth; k0 += kb) {
                for (std::size_t i = 0; i < r; ++i) {
                    const T* s = src + i * rs + k0 * cs;
                    T* d = dst + k0 * R + i;
                    for (std::size_t k = 0; k < kb; ++k) d[k * R] = s[k * cs];
                }
                for (std::size_t i = r; i < R; ++i)
                    for (std::size_t k = 0; k < kb; ++k) dst[(k0 + k) * R + i] = T(0);
            }
            for (; k0 < depth; ++k0) {
                for (std::size_t i = 0; i < r; ++i) dst[k0 * R + i] = src[i * rs + k0 * cs];
                for (std::size_t i = r; i < R; ++i) dst[k0 * R + i] = T(0);
            }
        }
        dst += depth * R;
    }
}

}  // namespace ctdl::cpu_kernels::detail
