#pragma once
// Softmax cross entropy over rows of C logits, the math every policy runs:
//
//   loss_r = m + log Σ_j exp(x_rj − m) − x_r,t(r),      m = max_j x_rj
//   dx_rj  = w_r / Σ w · (softmax(x_r)_j − [j == t(r)])
//
// w_r is 1, or mask_r, and 0 for a row whose target is ignore_index. The row max is exact
// (ops/common/lanes.hpp); exp is math::exp (core/math.hpp: ctdl's own float exp on the
// host, CUDA's expf on the device); Σ exp is a lane_sum in double, over the same values with
// and without the gradient; the loss term is in double, the gradient in T. The functors below are one call per row, for Exec::sum and Exec::for_each_index.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../../core/math.hpp"
#include "../../exec/hd.hpp"
#include "../common/lanes.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::cross_entropy_math {

/// t in [0, classes), for any integer type.
template <class I>
CTDL_HD constexpr bool target_in_range(I t, std::size_t classes) {
    if constexpr (std::is_signed_v<I>)
        if (t < 0) return false;
    return static_cast<unsigned long long>(t) < classes;
}

/// ignore_index as two plain values (std::optional does not cross into kernels): whether
/// target t equals it, for any integer type of t (as std::cmp_equal).
struct ignore_rule {
    bool active = false;
    std::int64_t value = 0;

    template <class I>
    CTDL_HD constexpr bool operator()(I t) const {
        if (!active) return false;
        if constexpr (std::is_signed_v<I>)
            return static_cast<std::int64_t>(t) == value;
        else
            return value >= 0 && static_cast<std::uint64_t>(t) == static_cast<std::uint64_t>(value);
    }
};

/// A mask value that is a weight: finite and >= 0 (false for NaN).
CTDL_HD constexpr bool valid_weight(double w) { return w >= 0 && w <= DBL_MAX; }

/// 1 for a row that cannot be used (target outside [0, classes) and not ignored, or a mask
/// value that is negative or not finite), else 0. An ignored row's mask is not looked at.
template <class I, class W>
struct invalid_row {
    const I* y;
    const W* mask;  // may be null
    std::size_t classes;
    ignore_rule ignored;
    CTDL_HD double operator()(std::size_t r) const {
        if (ignored(y[r])) return 0;
        if (!target_in_range(y[r], classes)) return 1;
        if (mask && !valid_weight(static_cast<double>(mask[r]))) return 1;
        return 0;
    }
};

/// w_r: 0 if row r is ignored, else mask[r] (or 1).
template <class I, class W>
struct row_weight {
    const I* y;
    const W* mask;  // may be null
    ignore_rule ignored;
    CTDL_HD double operator()(std::size_t r) const {
        return ignored(y[r]) ? 0.0 : mask ? static_cast<double>(mask[r]) : 1.0;
    }
};

/// w loss of one row of n logits with target t (w > 0); writes the row's gradient, scaled
/// by w inv_total, when dx is not null.
template <class T>
CTDL_HD double weighted_row(std::size_t n, const T* x, std::size_t t, double w, double inv_total, T* dx) {
    const T m = row_max(x, n);
    double s;  // Σ exp(x − m)
    if (dx) {
        for (std::size_t j = 0; j < n; ++j) dx[j] = math::exp(x[j] - m);
        s = lane_sum<double>(n, [dx](std::size_t j) { return static_cast<double>(dx[j]); });
    } else {
        s = lane_sum<double>(n, [x, m](std::size_t j) { return static_cast<double>(math::exp(x[j] - m)); });
    }
    const double loss = w * (static_cast<double>(m) + std::log(s) - static_cast<double>(x[t]));
    if (dx) {
        const double scale = w * inv_total;
        const T k = static_cast<T>(scale / s);
        for (std::size_t j = 0; j < n; ++j) dx[j] *= k;
        dx[t] -= static_cast<T>(scale);
    }
    return loss;
}

/// w_r loss_r for row r of [rows, classes] logits, writing row r of the gradient when dx is
/// not null (zeros for a row of weight 0, and for every row when Σ w = 0: inv_total = 0).
template <class T, class I, class W>
struct weighted_rows {
    const T* x;
    const I* y;
    const W* mask;  // may be null
    T* dx;          // may be null
    std::size_t classes;
    ignore_rule ignored;
    double inv_total;

    CTDL_HD double operator()(std::size_t r) const {
        T* const dr = dx ? dx + r * classes : nullptr;
        const double w = row_weight<I, W>{y, mask, ignored}(r);
        if (w == 0 || inv_total == 0) {
            if (dr)
                for (std::size_t j = 0; j < classes; ++j) dr[j] = 0;
            return 0;
        }
        return weighted_row(classes, x + r * classes, static_cast<std::size_t>(y[r]), w, inv_total, dr);
    }
};

}  // namespace ctdl::ops::cross_entropy_math
