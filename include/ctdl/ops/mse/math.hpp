#pragma once
// Mean squared error, the math every policy runs, one call per element i of N:
//   term_i = (p_i − y_i)² (in double),   dp_i = 2 (p_i − y_i) / N (in T)
#include <cstddef>

#include "../../exec/hd.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::mse_math {

/// term_i, writing dp_i = k (p_i − y_i) (k = 2 / N) when dp is not null.
template <class T, class U>
struct elements {
    const T* p;
    const U* y;
    T* dp;  // may be null
    T k;
    CTDL_HD double operator()(std::size_t i) const {
        const T d = p[i] - static_cast<T>(y[i]);
        if (dp) dp[i] = k * d;
        return static_cast<double>(d) * static_cast<double>(d);
    }
};

}  // namespace ctdl::ops::mse_math
