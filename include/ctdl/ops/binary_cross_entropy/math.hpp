#pragma once
// Binary cross entropy on logits, the math every policy runs, one call per element i of N,
// in the form that never overflows (e = exp(−|x_i|) is in (0, 1]):
//   term_i = max(x_i, 0) − x_i y_i + log(1 + e)   (in T, summed in double)
//   dx_i   = (sigmoid(x_i) − y_i) / N,   sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below
#include <cmath>
#include <cstddef>

#include "../../exec/hd.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::binary_cross_entropy_math {

/// term_i, writing dx_i when dx is not null (inv_n = 1 / N).
template <class T, class U>
struct elements {
    const T* x;
    const U* y;
    T* dx;  // may be null
    T inv_n;
    CTDL_HD double operator()(std::size_t i) const {
        const T xi = x[i], yi = static_cast<T>(y[i]);
        const T e = std::exp(-std::abs(xi));
        if (dx) {
            const T sigmoid = xi >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
            dx[i] = (sigmoid - yi) * inv_n;
        }
        return static_cast<double>((xi > 0 ? xi : T(0)) - xi * yi + std::log1p(e));
    }
};

}  // namespace ctdl::ops::binary_cross_entropy_math
