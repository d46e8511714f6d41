#pragma once
// Per-row math of the normalising kernels, written once for every policy (the cpu policy
// loops over rows on its thread pool, the device policy runs one functor per row).
//
// layer norm over one row of n values (x̂ = (x - μ) ρ, ρ = 1/√(σ² + ε), biased σ²):
//   forward   y = x̂ w + b
//   backward  g = dy w,  dx = ρ (g - mean(g) - x̂ mean(g x̂)),  dw += dy x̂,  db += dy
// softmax backward over one row: dx = y (dy - Σ dy y)
#include <cmath>
#include <cstddef>

#include "hd.hpp"

namespace ctdl::row_math {

/// y = layer_norm(x) w + b for one row; writes μ and ρ when the pointers are not null.
template <class T>
CTDL_HD void layer_norm_forward(std::size_t n, const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, T eps) {
    double s = 0;
    for (std::size_t c = 0; c < n; ++c) s += x[c];
    const T mu = static_cast<T>(s / static_cast<double>(n));
    double v = 0;
    for (std::size_t c = 0; c < n; ++c) v += static_cast<double>((x[c] - mu) * (x[c] - mu));
    const T rho = static_cast<T>(1.0 / std::sqrt(v / static_cast<double>(n) + static_cast<double>(eps)));
    for (std::size_t c = 0; c < n; ++c) y[c] = (x[c] - mu) * rho * w[c] + b[c];
    if (mean) *mean = mu;
    if (rstd) *rstd = rho;
}

/// dx for one row of layer norm.
template <class T>
CTDL_HD void layer_norm_dx(std::size_t n, const T* x, const T* w, T mu, T rho, const T* dy, T* dx) {
    double sg = 0, sgx = 0;
    for (std::size_t c = 0; c < n; ++c) {
        const T g = dy[c] * w[c];
        sg += g;
        sgx += g * (x[c] - mu) * rho;
    }
    const T mg = static_cast<T>(sg / static_cast<double>(n));
    const T mgx = static_cast<T>(sgx / static_cast<double>(n));
    for (std::size_t c = 0; c < n; ++c) dx[c] = rho * (dy[c] * w[c] - mg - (x[c] - mu) * rho * mgx);
}

/// dw[c], db[c] of layer norm: column c summed over the rows, in row order.
template <class T>
CTDL_HD void layer_norm_dw_column(std::size_t rows, std::size_t cols, std::size_t c, const T* x, const T* mean,
                                  const T* rstd, const T* dy, T* dw, T* db, bool accumulate) {
    T sw = accumulate ? dw[c] : T(0), sb = accumulate ? db[c] : T(0);
    for (std::size_t r = 0; r < rows; ++r) {
        const T g = dy[r * cols + c];
        sw += g * (x[r * cols + c] - mean[r]) * rstd[r];
        sb += g;
    }
    dw[c] = sw;
    db[c] = sb;
}

/// dx = y (dy - Σ dy y) for one row of softmax.
template <class T>
CTDL_HD void softmax_backward(std::size_t n, const T* y, const T* dy, T* dx) {
    T dot = 0;
    for (std::size_t c = 0; c < n; ++c) dot += dy[c] * y[c];
    for (std::size_t c = 0; c < n; ++c) dx[c] = y[c] * (dy[c] - dot);
}

}  // namespace ctdl::row_math
