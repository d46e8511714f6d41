#pragma once
// Row softmax over a row-major [rows, cols] block, forward and backward.
//
//   softmax_rows:      y_c = exp(x_c − m) / Σ_k exp(x_k − m),   m = max_k x_k
//   log_softmax_rows:  y_c = (x_c − m) − log Σ_k exp(x_k − m)
//   softmax_rows_backward:      dx = y ⊙ (dy − Σ_k dy_k y_k)         (y = softmax(x))
//   log_softmax_rows_backward:  dx = dy − exp(y) · Σ_k dy_k           (y = log_softmax(x))
//
// Subtracting the row maximum keeps every exponent <= 0, so logits of any size give
// finite results (a row of all −inf gives NaN, as in PyTorch). For float, exp is
// detail::exp_float (within about 1 ulp of the exact value, and vectorizable); for double it
// is std::exp. Sums of float accumulate
// in double with the fixed lane order of reduce.hpp. Threads split rows, so results are
// bitwise identical for any thread count. out may be exactly in, and dx exactly dy.
// Each call is one pass::softmax.
#include <bit>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>

#include "../../core/math.hpp"
#include "../pass_count.hpp"
#include "../thread_pool.hpp"
#include "elementwise.hpp"
#include "pool.hpp"
#include "reduce.hpp"

namespace ctdl::cpu_kernels {

namespace detail {

/// max_c x[c] over n >= 1 elements, in 16 lanes (an exact operation: any order gives the
/// same value for non-NaN input).
template <class T>
T row_max(const T* x, std::size_t n) {
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

using math::exp_float;

template <class T>
T exp_of(T x) noexcept {
    if constexpr (std::is_same_v<T, float>)
        return exp_float(x);
    else
        return std::exp(x);
}

/// body(row pointer offset r · cols) for each row r, rows split over the pool.
template <class F>
void for_rows(thread_pool& pool, std::size_t rows, std::size_t cols, const F& body) {
    if (cols == 0) return;
    for_item_blocks(pool, rows, rows * cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) body(r * cols);
    });
}

}  // namespace detail

/// out[r, c] = exp(in[r, c] − m_r) / Σ_k exp(in[r, k] − m_r). One pass::softmax.
template <std::floating_point T>
void softmax_rows(std::size_t rows, std::size_t cols, const T* in, T* out, thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::softmax);
    detail::for_rows(pool, rows, cols, [&](std::size_t off) {
        const T* x = in + off;
        T* y = out + off;
        const T m = detail::row_max(x, cols);
        for (std::size_t c = 0; c < cols; ++c) y[c] = detail::exp_of(x[c] - m);
        const A s = detail::lane_sum<A>(cols, [y](std::size_t c) { return static_cast<A>(y[c]); });
        const A inv = A{1} / s;
        for (std::size_t c = 0; c < cols; ++c) y[c] = static_cast<T>(static_cast<A>(y[c]) * inv);
    });
}

/// out[r, c] = (in[r, c] − m_r) − log Σ_k exp(in[r, k] − m_r). One pass::softmax.
template <std::floating_point T>
void log_softmax_rows(std::size_t rows, std::size_t cols, const T* in, T* out, thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::softmax);
    detail::for_rows(pool, rows, cols, [&](std::size_t off) {
        const T* x = in + off;
        T* y = out + off;
        const T m = detail::row_max(x, cols);
        const A s = detail::lane_sum<A>(cols, [x, m](std::size_t c) { return static_cast<A>(detail::exp_of(x[c] - m)); });
        const A log_s = std::log(s);
        for (std::size_t c = 0; c < cols; ++c) y[c] = static_cast<T>(static_cast<A>(x[c] - m) - log_s);
    });
}

/// Given y = softmax(x) and dy = ∂L/∂y: dx[r, c] = y[r, c] · (dy[r, c] − Σ_k dy[r, k] y[r, k]).
/// (The Jacobian of softmax is diag(y) − y yᵀ.) One pass::softmax.
template <std::floating_point T>
void softmax_rows_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T* dx,
                           thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::softmax);
    detail::for_rows(pool, rows, cols, [&](std::size_t off) {
        const T* yr = y + off;
        const T* g = dy + off;
        T* d = dx + off;
        const A dot = detail::lane_sum<A>(cols, [yr, g](std::size_t c) { return static_cast<A>(g[c]) * yr[c]; });
        for (std::size_t c = 0; c < cols; ++c) d[c] = static_cast<T>(static_cast<A>(yr[c]) * (g[c] - dot));
    });
}

/// Given y = log_softmax(x) and dy = ∂L/∂y: dx[r, c] = dy[r, c] − exp(y[r, c]) · Σ_k dy[r, k].
/// One pass::softmax.
template <std::floating_point T>
void log_softmax_rows_backward(std::size_t rows, std::size_t cols, const T* y, const T* dy, T* dx,
                               thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::softmax);
    detail::for_rows(pool, rows, cols, [&](std::size_t off) {
        const T* yr = y + off;
        const T* g = dy + off;
        T* d = dx + off;
        const A s = detail::lane_sum<A>(cols, [g](std::size_t c) { return static_cast<A>(g[c]); });
        for (std::size_t c = 0; c < cols; ++c) d[c] = static_cast<T>(g[c] - static_cast<A>(detail::exp_of(yr[c])) * s);
    });
}

}  // namespace ctdl::cpu_kernels
