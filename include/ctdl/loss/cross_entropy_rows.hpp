#pragma once
// The functors cross_entropy runs on a policy that is not host-accessible (device), through
// Exec::sum and Exec::for_each_index: one call per row, with the arithmetic of the cpu loop
// (row max in T, Σ exp in double, the loss term in double, the gradient in T).
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../exec/hd.hpp"

namespace ctdl::loss::detail {

/// t in [0, classes), for any integer type.
template <class I>
CTDL_HD constexpr bool target_in_range(I t, std::size_t classes) {
    if constexpr (std::is_signed_v<I>)
        if (t < 0) return false;
    return static_cast<unsigned long long>(t) < classes;
}

/// ignore_index as two plain values (std::optional does not cross into kernels).
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

/// 1 for a row the cpu loop would refuse (target out of range and not ignored, or a mask
/// value that is negative or not finite), else 0.
template <class I, class W>
struct ce_invalid_row {
    const I* y;
    const W* mask;  // may be null
    std::size_t classes;
    ignore_rule ignored;
    CTDL_HD double operator()(std::size_t r) const {
        if (ignored(y[r])) return 0;
        if (!target_in_range(y[r], classes)) return 1;
        if (mask) {
            const double w = static_cast<double>(mask[r]);
            if (!(w >= 0 && w <= DBL_MAX)) return 1;  // negative, NaN or inf
        }
        return 0;
    }
};

/// The weight of row r: 0 if ignored, else mask[r] (or 1).
template <class I, class W>
struct ce_row_weight {
    const I* y;
    const W* mask;  // may be null
    ignore_rule ignored;
    CTDL_HD double operator()(std::size_t r) const {
        return ignored(y[r]) ? 0.0 : mask ? static_cast<double>(mask[r]) : 1.0;
    }
};

/// w_r loss_r for row r, writing the row of the gradient when dx is not null.
template <class T, class I, class W>
struct ce_row {
    const T* x;
    const I* y;
    const W* mask;  // may be null
    T* dx;          // may be null
    std::size_t classes;
    ignore_rule ignored;
    double inv_total;

    CTDL_HD double operator()(std::size_t r) const {
        const T* const xr = x + r * classes;
        T* const dr = dx ? dx + r * classes : nullptr;
        const double w = ignored(y[r]) ? 0 : mask ? static_cast<double>(mask[r]) : 1;
        if (w == 0 || inv_total == 0) {
            if (dr)
                for (std::size_t j = 0; j < classes; ++j) dr[j] = 0;
            return 0;
        }
        const std::size_t t = static_cast<std::size_t>(y[r]);
        T m = xr[0];
        for (std::size_t j = 1; j < classes; ++j) m = xr[j] > m ? xr[j] : m;
        double s = 0;  // Σ exp(x - m), in double
        for (std::size_t j = 0; j < classes; ++j) {
            const T e = std::exp(xr[j] - m);
            if (dr) dr[j] = e;
            s += static_cast<double>(e);
        }
        const double loss = w * (static_cast<double>(m) + std::log(s) - static_cast<double>(xr[t]));
        if (dr) {
            const double scale = w * inv_total;
            const T k = static_cast<T>(scale / s);
            for (std::size_t j = 0; j < classes; ++j) dr[j] *= k;
            dr[t] -= static_cast<T>(scale);
        }
        return loss;
    }
};

}  // namespace ctdl::loss::detail
