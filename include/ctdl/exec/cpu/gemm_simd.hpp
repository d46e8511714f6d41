#pragma once
// The vector registers the cpu GEMM kernels are written against, chosen at compile time:
// AVX-512 (__AVX512F__), AVX2 + FMA (__AVX2__ && __FMA__), else plain scalars.
//
// simd<T> offers one register type `reg` of `width` lanes of T and the few operations a
// GEMM micro-kernel needs: load/store, broadcast, fused multiply-add (a·b + c, one
// rounding), add. `tile<T>` names the register tile of the micro-kernel for that ISA:
// `rows` rows of C (broadcast from A) × `vecs` registers of C's columns (loaded from B).
#include <cstddef>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::detail {

template <class T>
struct simd {  // portable fallback: one lane
    using reg = T;
    static constexpr std::size_t width = 1;
    static constexpr const char* isa = "scalar";
    static reg zero() { return T(0); }
    static reg load(const T* p) { return *p; }
    static void store(T* p, reg v) { *p = v; }
    static reg set1(T v) { return v; }
    static reg fma(reg a, reg b, reg c) { return a * b + c; }
    static reg add(reg a, reg b) { return a + b; }
};

#if defined(__AVX512F__)

template <>
struct simd<float> {
    using reg = __m512;
    static constexpr std::size_t width = 16;
    static constexpr const char* isa = "avx512";
    static reg zero() { return _mm512_setzero_ps(); }
    static reg load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, reg v) { _mm512_storeu_ps(p, v); }
    static reg set1(float v) { return _mm512_set1_ps(v); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
};

template <>
struct simd<double> {
    using reg = __m512d;
    static constexpr std::size_t width = 8;
    static constexpr const char* isa = "avx512";
    static reg zero() { return _mm512_setzero_pd(); }
    static reg load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, reg v) { _mm512_storeu_pd(p, v); }
    static reg set1(double v) { return _mm512_set1_pd(v); }
    static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm512_add_pd(a, b); }
};

// 8 × 2 accumulators + 2 for the row of B + 1 broadcast (or folded into the FMA as an
// embedded {1to16} broadcast), of 32 zmm registers. Measured on Zen 5 through the same
// driver: 8 × 32 runs 2-10% faster than 14 × 32 and 6 × 64 on every product tried (square
// 128-1024, the MLP layer shapes in all three forms); taller tiles win only where their
// height fits M better (gemm.hpp picks the tile per product).
template <class T>
struct tile {
    static constexpr std::size_t rows = 8, vecs = 2;
};

#elif defined(__AVX2__) && defined(__FMA__)

template <>
struct simd<float> {
    using reg = __m256;
    static constexpr std::size_t width = 8;
    static constexpr const char* isa = "avx2";
    static reg zero() { return _mm256_setzero_ps(); }
    static reg load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, reg v) { _mm256_storeu_ps(p, v); }
    static reg set1(float v) { return _mm256_set1_ps(v); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
};

template <>
struct simd<double> {
    using reg = __m256d;
    static constexpr std::size_t width = 4;
    static constexpr const char* isa = "avx2";
    static reg zero() { return _mm256_setzero_pd(); }
    static reg load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, reg v) { _mm256_storeu_pd(p, v); }
    static reg set1(double v) { return _mm256_set1_pd(v); }
    static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_pd(a, b, c); }
    static reg add(reg a, reg b) { return _mm256_add_pd(a, b); }
};

// 16 ymm registers: 6 × 2 accumulators + 2 for B + 1 broadcast.
template <class T>
struct tile {
    static constexpr std::size_t rows = 6, vecs = 2;
};

#else

template <class T>
struct tile {
    static constexpr std::size_t rows = 4, vecs = 4;
};

#endif

}  // namespace ctdl::cpu_kernels::detail
