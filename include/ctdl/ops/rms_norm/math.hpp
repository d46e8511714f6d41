#pragma once
// RMS norm over one row of n values, the math every policy runs (as torch.nn.RMSNorm):
//   forward   ρ = 1/√(Σ x² / n + ε),  y = x ρ w
//   backward  g = dy w,  dx = ρ (g − x ρ² Σ g x / n),  dw = Σ_rows dy x ρ
// Row sums in the lanes of ops/common/lanes.hpp (in double for float); dw adds rows in
// order 0, 1, ..., so every result depends on the shape alone.
#include <cmath>
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../common/lanes.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::rms_norm_math {

/// y = x ρ w for one row; returns ρ.
template <class T>
CTDL_HD T forward_row(std::size_t n, const T* x, const T* w, T* y, T eps) {
    using A = accumulator_t<T>;
    const A ss = lane_sum<A>(n, [x](std::size_t c) { return static_cast<A>(x[c]) * static_cast<A>(x[c]); });
    const T rho = static_cast<T>(A(1) / std::sqrt(ss / static_cast<A>(n) + static_cast<A>(eps)));
    for (std::size_t c = 0; c < n; ++c) y[c] = x[c] * rho * w[c];
    return rho;
}

/// dx of one row.
template <class T>
CTDL_HD void dx_row(std::size_t n, const T* x, const T* w, T rho, const T* dy, T* dx) {
    using A = accumulator_t<T>;
    const A sgx = lane_sum<A>(n, [&](std::size_t c) { return static_cast<A>(dy[c] * w[c]) * static_cast<A>(x[c]); });
    const T k = static_cast<T>(static_cast<A>(rho) * static_cast<A>(rho) * sgx / static_cast<A>(n));
    for (std::size_t c = 0; c < n; ++c) dx[c] = rho * (dy[c] * w[c] - x[c] * k);
}

/// dw[c0 .. c0 + nc) over all rows in row order, Tile >= nc accumulators of T.
template <std::size_t Tile, class T>
CTDL_HD void dw_columns(std::size_t rows, std::size_t cols, std::size_t c0, std::size_t nc, const T* x,
                        const T* rstd, const T* dy, T* dw, bool accumulate) {
    T sw[Tile];
    for (std::size_t j = 0; j < nc; ++j) sw[j] = accumulate ? dw[c0 + j] : T(0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols + c0;
        const T* gr = dy + r * cols + c0;
        const T rho = rstd[r];
        for (std::size_t j = 0; j < nc; ++j) sw[j] = madd(gr[j] * xr[j], rho, sw[j]);
    }
    for (std::size_t j = 0; j < nc; ++j) dw[c0 + j] = sw[j];
}

}  // namespace ctdl::ops::rms_norm_math
