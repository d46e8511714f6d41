#pragma once
// The fixed summation order every op's row math uses, on every policy.
//
// lane_sum(n, f) = Σ_{i<n} f(i) in 16 interleaved lanes (lane l takes f(l), f(l + 16), ...)
// combined by a fixed pairwise tree (l += l + 8, l += l + 4, l += l + 2, l += l + 1). The
// order depends on n alone, so a row gives the same bits on the cpu pool (any thread
// count) and on the device system; on the cpu g++ keeps the 16 lanes in vector registers
// (the unroll pragmas stop its -O3 vectorizer from taking the outer loop instead and adding
// the lanes one scalar at a time: same result, several times slower).
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../../exec/hd.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

/// The type sums of T accumulate in: double for floating types narrower than double, else T.
template <class T>
using accumulator_t = std::conditional_t<std::is_floating_point_v<T> && (sizeof(T) < sizeof(double)), double, T>;

inline constexpr std::size_t lanes = 16;

template <class A, class F>
CTDL_HD A lane_sum(std::size_t n, const F& f) {
    A acc[lanes]{};
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
#pragma GCC unroll 16
        for (std::size_t l = 0; l < lanes; ++l) acc[l] += f(i + l);
    for (std::size_t l = 0; i + l < n; ++l) acc[l] += f(i + l);
#pragma GCC unroll 4
    for (std::size_t w = lanes / 2; w > 0; w /= 2)
#pragma GCC unroll 8
        for (std::size_t l = 0; l < w; ++l) acc[l] += acc[l + w];
    return acc[0];
}

/// a · b + c rounded once where the target has fused multiply-add (CUDA; a host built with
/// FMA), else rounded twice: the same on every path of one build, whether a loop is
/// vectorized or not (left to the compiler, a · b + c is fused in some inlined copies and
/// not in others). Column sums whose tile width differs between policies use it.
template <class T>
CTDL_HD T madd(T a, T b, T c) {
#if defined(__CUDA_ARCH__)
    return fma(a, b, c);
#elif defined(__FMA__)
    return std::fma(a, b, c);
#else
    return a * b + c;
#endif
}

/// max_c x[c] over n >= 1 elements, in 16 lanes (exact: any order gives the same value for
/// input without NaN).
template <class T>
CTDL_HD T row_max(const T* x, std::size_t n) {
    T acc[lanes];
    for (std::size_t l = 0; l < lanes; ++l) acc[l] = x[0];
    std::size_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (std::size_t l = 0; l < lanes; ++l) acc[l] = acc[l] > x[i + l] ? acc[l] : x[i + l];
    for (std::size_t l = 0; i + l < n; ++l) acc[l] = acc[l] > x[i + l] ? acc[l] : x[i + l];
    T m = acc[0];
    for (std::size_t l = 1; l < lanes; ++l) m = m > acc[l] ? m : acc[l];
    return m;
}

}  // namespace ctdl::ops
