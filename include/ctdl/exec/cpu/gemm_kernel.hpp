#pragma once
// The register-tile micro-kernel of the cpu GEMM.
//
// With a panel a of MR rows of C over kc (a[k·MR + i] when packed; with ARows, op(A) read in
// place: a[i·lda + k]) and a panel b of kc rows of NR = NV · width values (b[k·ldb + j];
// ldb = NR when packed, the row stride of B when B is read in place), it computes the
// MR × NR tile
//
//     acc[i][j] = Σ_{k < kc} op(A)[i, k] · b[k·ldb + j]
//
// in registers (one FMA chain per element, k ascending, starting from 0), then writes
//     C = acc        (add == false)      or      C = C + acc     (add == true)
// for the mr × nr corner that lies inside C: at c[i·ldc + j], or at c[j·ldc + i] when
// transc (the driver computes Cᵀ = op(B)ᵀ·op(A)ᵀ for narrow C). Every element of C sees
// the same sequence of operations wherever its tile sits and whatever the tile shape, so
// results never depend on how C is split up.
#include <cstddef>
#include <type_traits>

#include "gemm_simd.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::detail {

#if defined(__AVX512F__)
/// The first lanes of a vector (mask m) from or to memory; the other lanes are not touched.
inline __m512 zmm_load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512d zmm_load(const double* p, __mmask16 m) { return _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p); }
inline void zmm_store(float* p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
inline void zmm_store(double* p, __mmask16 m, __m512d v) { _mm512_mask_storeu_pd(p, static_cast<__mmask8>(m), v); }
#endif

/// The mr × nr corner of a tile held in tmp (row stride ld) into C at c: C = tmp or
/// C += tmp, at c[i·ldc + j], or at c[j·ldc + i] when transc. The store of edge tiles and
/// of transposed tiles, out of line: one copy for every tile shape.
template <class T>
[[gnu::noinline]] void store_tile(const T* tmp, std::size_t ld, T* __restrict c, std::size_t ldc, std::size_t mr,
                                  std::size_t nr, bool add, bool transc) {
    if (transc) {
        for (std::size_t j = 0; j < nr; ++j) {
            T* p = c + j * ldc;
            if (add)
                for (std::size_t i = 0; i < mr; ++i) p[i] += tmp[i * ld + j];
            else
                for (std::size_t i = 0; i < mr; ++i) p[i] = tmp[i * ld + j];
        }
    } else {
        for (std::size_t i = 0; i < mr; ++i) {
            T* p = c + i * ldc;
            const T* q = tmp + i * ld;
            if (add)
                for (std::size_t j = 0; j < nr; ++j) p[j] += q[j];
            else
                for (std::size_t j = 0; j < nr; ++j) p[j] = q[j];
        }
    }
}

/// transc is a run-time argument: it changes only how the finished tile is stored (after
/// the k loop), so one instantiation per tile serves C and Cᵀ.
template <class T, std::size_t MR, std::size_t NV, bool ARows = false>
struct micro_kernel {
    using S = simd<T>;
    using reg = typename S::reg;
    static constexpr std::size_t W = S::width;
    static constexpr std::size_t NR = NV * W;
#if defined(__AVX512F__)
    static constexpr bool masked_edges = std::is_same_v<T, float> || std::is_same_v<T, double>;
#else
    static constexpr bool masked_edges = false;
#endif

    static void run(std::size_t kc, const T* __restrict a, std::size_t lda, const T* __restrict b, std::size_t ldb,
                    T* __restrict c, std::size_t ldc, std::size_t mr, std::size_t nr, bool add, bool transc = false) {
        reg acc[MR][NV];
#pragma GCC unroll 32
        for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
            for (std::size_t v = 0; v < NV; ++v) acc[i][v] = S::zero();

        for (std::size_t k = 0; k < kc; ++k) {
            reg bv[NV];
#pragma GCC unroll 8
            for (std::size_t v = 0; v < NV; ++v) bv[v] = S::load(b + v * W);
#pragma GCC unroll 32
            for (std::size_t i = 0; i < MR; ++i) {
                const reg av = S::set1(ARows ? a[i * lda] : a[i]);
#pragma GCC unroll 8
                for (std::size_t v = 0; v < NV; ++v) acc[i][v] = S::fma(av, bv[v], acc[i][v]);
            }
            a += ARows ? 1 : MR;
            b += ldb;
        }

        if (!transc && mr == MR && nr == NR) [[likely]] {
#pragma GCC unroll 32
            for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
                for (std::size_t v = 0; v < NV; ++v) {
                    T* p = c + i * ldc + v * W;
                    S::store(p, add ? S::add(S::load(p), acc[i][v]) : acc[i][v]);
                }
            return;
        }
#if defined(__AVX512F__)
        if constexpr (masked_edges) {
            if (!transc) {
                // An edge tile: its rows below mr and its columns below nr, straight from the
                // registers under one column mask per vector (all ones for a whole vector,
                // none past nr: masked-off lanes are neither read nor written); the row test
                // is per unrolled row.
                __mmask16 m[NV];
#pragma GCC unroll 8
                for (std::size_t v = 0; v < NV; ++v)
                    m[v] = (v + 1) * W <= nr ? __mmask16((1u << W) - 1)
                           : v * W < nr      ? static_cast<__mmask16>((1u << (nr - v * W)) - 1)
                                             : __mmask16(0);
                if (add) {
#pragma GCC unroll 32
                    for (std::size_t i = 0; i < MR; ++i) {
                        if (i >= mr) break;
#pragma GCC unroll 8
                        for (std::size_t v = 0; v < NV; ++v) {
                            T* p = c + i * ldc + v * W;
                            zmm_store(p, m[v], S::add(zmm_load(p, m[v]), acc[i][v]));
                        }
                    }
                } else {
#pragma GCC unroll 32
                    for (std::size_t i = 0; i < MR; ++i) {
                        if (i >= mr) break;
#pragma GCC unroll 8
                        for (std::size_t v = 0; v < NV; ++v) zmm_store(c + i * ldc + v * W, m[v], acc[i][v]);
                    }
                }
                return;
            }
        }
#endif
        alignas(64) T tmp[MR * NR];
#pragma GCC unroll 32
        for (std::size_t i = 0; i < MR; ++i)
#pragma GCC unroll 8
            for (std::size_t v = 0; v < NV; ++v) S::store(tmp + i * NR + v * W, acc[i][v]);
        store_tile(tmp, NR, c, ldc, mr, nr, add, transc);
    }
};

}  // namespace ctdl::cpu_kernels::detail
