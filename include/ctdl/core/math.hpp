#pragma once
// Elementwise math that kernels call on the host and on the device, fast for float.
//
// The float versions are branch-free and call no library function, so g++ vectorizes the
// loops of maps and GEMM epilogues that use them (libm's scalar expf/tanhf were most of a
// GPT training step's time). On the device they are CUDA's own expf/tanhf. Double uses
// the standard library.
#include <bit>
#include <cmath>
#include <cstdint>

#include "../exec/hd.hpp"

namespace ctdl::inline CTDL_ISA_NS::math {

/// e^x for float, written so that g++ vectorizes loops that call it (no branches, no
/// library call). Cody–Waite reduction x = k ln 2 + r, |r| <= ln 2 / 2, then a degree-7
/// polynomial for e^r and e^x = e^r · 2^k with 2^k built from its exponent bits. x < −87.33 (where e^x would be
/// below the smallest normal float) gives exactly 0, so e^−inf = 0; x > ln FLT_MAX gives
/// inf; NaN stays NaN. Every multiply-add is an explicit fma where the target has one, so
/// the vector loop and its scalar remainder compute bitwise the same values.
CTDL_HD inline float exp_float(float x) noexcept {
#if defined(__CUDA_ARCH__)
    return ::expf(x);
#else
    constexpr float lo = -87.33654f, hi = 88.72283f;
    constexpr float log2e = 1.44269504088896341f;
    constexpr float ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;  // ln 2 = hi + lo, hi exact in 9 bits
    constexpr float round_magic = 12582912.0f;                       // 1.5 · 2^23: adding it rounds to an integer
#if defined(__FMA__)
    const auto madd = [](float a, float b, float c) { return std::fma(a, b, c); };
#else
    const auto madd = [](float a, float b, float c) { return a * b + c; };
#endif
    const float xc = x < lo ? lo : (x > hi ? hi : x);
    const float t = madd(xc, log2e, round_magic);  // k + 1.5 · 2^23, k = round(x / ln 2)
    const float k = t - round_magic;
    const float r = madd(-k, ln2_lo, madd(-k, ln2_hi, xc));
    // e^r ≈ 1 + r + r² · P(r), P of degree 5 with Cephes' minimax coefficients for expf.
    float p = 1.9875691500e-4f;
    p = madd(p, r, 1.3981999507e-3f);
    p = madd(p, r, 8.3334519073e-3f);
    p = madd(p, r, 4.1665795894e-2f);
    p = madd(p, r, 1.6666665459e-1f);
    p = madd(p, r, 5.0000001201e-1f);
    p = madd(p, r * r, r) + 1.0f;
    // The low bits of t hold k (two's complement, |k| <= 128); 2^k has exponent field k + 127.
    const std::uint32_t kbits = std::bit_cast<std::uint32_t>(t) - std::bit_cast<std::uint32_t>(round_magic);
    const float scale = std::bit_cast<float>((kbits + 127u) << 23);
    const float y = p * scale;
    return x < lo ? 0.0f : (x > hi ? HUGE_VALF : y);
#endif
}

/// tanh(x) for float, within a few ulp of 1 (relative error < 5e-7 for |x| >= 1/4):
/// an odd Taylor polynomial below |x| = 1/4 (truncation error < 4e-9 relative there),
/// (1 - e^-2|x|) / (1 + e^-2|x|) with the sign restored above.
CTDL_HD inline float tanh_float(float x) noexcept {
#if defined(__CUDA_ARCH__)
    return ::tanhf(x);
#else
    const float a = x < 0.0f ? -x : x;
    const float t = exp_float(-2.0f * a);
    const float big = (1.0f - t) / (1.0f + t);
    const float x2 = x * x;
    const float small = a * (1.0f + x2 * (-1.0f / 3.0f + x2 * (2.0f / 15.0f + x2 * (-17.0f / 315.0f + x2 * (62.0f / 2835.0f)))));
    const float r = a < 0.25f ? small : big;
    return x < 0.0f ? -r : r;
#endif
}

template <class T>
CTDL_HD inline T exp(T x) noexcept {
    if constexpr (sizeof(T) == sizeof(float)) return exp_float(x);
    else return std::exp(x);
}

template <class T>
CTDL_HD inline T tanh(T x) noexcept {
    if constexpr (sizeof(T) == sizeof(float)) return tanh_float(x);
    else return std::tanh(x);
}

}  // namespace ctdl::math
