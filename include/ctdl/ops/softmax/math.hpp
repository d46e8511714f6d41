#pragma once
// Softmax over one row of n values, the math every policy runs:
//   forward   y_c = exp(x_c − m) / Σ_k exp(x_k − m),   m = max_k x_k
//   backward  dx_c = y_c (dy_c − Σ_k dy_k y_k)         (from the output y)
// Subtracting the row maximum keeps every exponent <= 0, so logits of any size give finite
// results (a row of all −inf gives NaN, as in PyTorch). exp is math::exp (vectorizable for
// float on the host, CUDA's expf on the device); sums in the lanes of ops/common/lanes.hpp,
// in double for float. y may be x, and dx may be dy.
#include <cstddef>

#include "../../core/math.hpp"
#include "../../exec/hd.hpp"
#include "../common/lanes.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::softmax_math {

template <class T>
CTDL_HD void forward_row(std::size_t n, const T* x, T* y) {
    using A = accumulator_t<T>;
    const T m = row_max(x, n);
    for (std::size_t c = 0; c < n; ++c) y[c] = math::exp(x[c] - m);
    const A s = lane_sum<A>(n, [y](std::size_t c) { return static_cast<A>(y[c]); });
    const A inv = A(1) / s;
    for (std::size_t c = 0; c < n; ++c) y[c] = static_cast<T>(static_cast<A>(y[c]) * inv);
}

template <class T>
CTDL_HD void backward_row(std::size_t n, const T* y, const T* dy, T* dx) {
    using A = accumulator_t<T>;
    const A dot = lane_sum<A>(n, [y, dy](std::size_t c) { return static_cast<A>(dy[c]) * static_cast<A>(y[c]); });
    for (std::size_t c = 0; c < n; ++c)
        dx[c] = static_cast<T>(static_cast<A>(y[c]) * (static_cast<A>(dy[c]) - dot));
}

}  // namespace ctdl::ops::softmax_math
