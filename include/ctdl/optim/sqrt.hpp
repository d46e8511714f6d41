#pragma once
// sqrt_in_place(x, n): x[i] = sqrt(x[i]) for a short block, with vector instructions on the
// host; std::sqrt per element on the device.
//
// GCC does not vectorize std::sqrt unless -fno-math-errno is given (it must be able to set
// errno for a negative argument), and ctdl does not impose that flag on its users. So the
// optimizers that need square roots (Adam, AdamW) collect a block of arguments and take
// their roots here (256-bit AVX where available: per element as fast as AVX-512 square
// roots, and free of GCC 12's -Wmaybe-uninitialized false positive in _mm512_sqrt_ps).
// IEEE square roots are correctly rounded in every instruction set, so the vector lanes,
// the scalar tail and the device give bitwise the same results.
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../exec/hd.hpp"

#if !defined(__CUDA_ARCH__)
#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#elif defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>
#endif
#endif

namespace ctdl::optim::detail {

template <class T>
CTDL_HD inline void sqrt_in_place(T* x, std::size_t n) noexcept {
    std::size_t i = 0;
#if !defined(__CUDA_ARCH__)
    if constexpr (std::is_same_v<T, float>) {
#if defined(__AVX__)
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#elif defined(__SSE2__)
        for (; i + 4 <= n; i += 4) _mm_storeu_ps(x + i, _mm_sqrt_ps(_mm_loadu_ps(x + i)));
#elif defined(__ARM_NEON) && defined(__aarch64__)
        for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vsqrtq_f32(vld1q_f32(x + i)));
#endif
    } else if constexpr (std::is_same_v<T, double>) {
#if defined(__AVX__)
        for (; i + 4 <= n; i += 4) _mm256_storeu_pd(x + i, _mm256_sqrt_pd(_mm256_loadu_pd(x + i)));
#elif defined(__SSE2__)
        for (; i + 2 <= n; i += 2) _mm_storeu_pd(x + i, _mm_sqrt_pd(_mm_loadu_pd(x + i)));
#elif defined(__ARM_NEON) && defined(__aarch64__)
        for (; i + 2 <= n; i += 2) vst1q_f64(x + i, vsqrtq_f64(vld1q_f64(x + i)));
#endif
    }
#endif
    for (; i < n; ++i) x[i] = std::sqrt(x[i]);
}

}  // namespace ctdl::optim::detail
