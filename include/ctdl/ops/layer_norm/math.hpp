#pragma once
// Layer norm over one row of n values, the math every policy runs (x̂ = (x − μ) ρ,
// ρ = 1/√(σ² + ε), biased σ²):
//   forward   μ = Σ x / n,  σ² = Σ (x − μ)² / n,  y = x̂ w + b
//   backward  g = dy w,  dx = ρ (g − Σ g / n − x̂ Σ g x̂ / n),  dw = Σ_rows dy x̂,  db = Σ_rows dy
// Row sums in the lanes of ops/common/lanes.hpp, accumulated in double for float; the
// column sums of dw, db add rows in order 0, 1, ..., so every result depends on the shape
// alone (not on the policy or its threads).
#include <cmath>
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../common/lanes.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::layer_norm_math {

/// y = x̂ w + b for one row; returns μ and ρ.
template <class T>
CTDL_HD void forward_row(std::size_t n, const T* x, const T* w, const T* b, T* y, T& mu, T& rho, T eps) {
    using A = accumulator_t<T>;
    const T m = static_cast<T>(lane_sum<A>(n, [x](std::size_t c) { return static_cast<A>(x[c]); }) / static_cast<A>(n));
    const A v = lane_sum<A>(n, [x, m](std::size_t c) { return static_cast<A>((x[c] - m) * (x[c] - m)); });
    const T r = static_cast<T>(A(1) / std::sqrt(v / static_cast<A>(n) + static_cast<A>(eps)));
    for (std::size_t c = 0; c < n; ++c) y[c] = (x[c] - m) * r * w[c] + b[c];
    mu = m;
    rho = r;
}

/// dx of one row.
template <class T>
CTDL_HD void dx_row(std::size_t n, const T* x, const T* w, T mu, T rho, const T* dy, T* dx) {
    using A = accumulator_t<T>;
    const A sg = lane_sum<A>(n, [&](std::size_t c) { return static_cast<A>(dy[c] * w[c]); });
    const A sgx = lane_sum<A>(n, [&](std::size_t c) { return static_cast<A>(dy[c] * w[c] * (x[c] - mu) * rho); });
    const T mg = static_cast<T>(sg / static_cast<A>(n)), mgx = static_cast<T>(sgx / static_cast<A>(n));
    for (std::size_t c = 0; c < n; ++c) dx[c] = rho * (dy[c] * w[c] - mg - (x[c] - mu) * rho * mgx);
}

/// dw[c0 .. c0 + nc), db[...] over all rows in row order, Tile >= nc accumulators of T.
template <std::size_t Tile, class T>
CTDL_HD void dw_columns(std::size_t rows, std::size_t cols, std::size_t c0, std::size_t nc, const T* x,
                        const T* mean, const T* rstd, const T* dy, T* dw, T* db, bool accumulate) {
    T sw[Tile], sb[Tile];
    for (std::size_t j = 0; j < nc; ++j) {
        sw[j] = accumulate ? dw[c0 + j] : T(0);
        sb[j] = accumulate ? db[c0 + j] : T(0);
    }
    for (std::size_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols + c0;
        const T* gr = dy + r * cols + c0;
        const T mu = mean[r], rho = rstd[r];
        for (std::size_t j = 0; j < nc; ++j) {
            sw[j] = madd(gr[j] * (xr[j] - mu), rho, sw[j]);
            sb[j] += gr[j];
        }
    }
    for (std::size_t j = 0; j < nc; ++j) {
        dw[c0 + j] = sw[j];
        db[c0 + j] = sb[j];
    }
}

}  // namespace ctdl::ops::layer_norm_math
