#pragma once
// Row-wise kernels of the normalising layers on the cpu pool, with the epilogue protocol of
// gemm for the gradient they hand upstream.
//
// Layer norm is the math of exec/row_math.hpp (x̂ = (x − μ) ρ, ρ = 1/√(σ² + ε)):
//   forward   μ = Σ x / n,  σ² = Σ (x − μ)² / n,  y = x̂ w + b
//   backward  g = dy w,  dx = ρ (g − Σ g / n − x̂ Σ g x̂ / n),  dw = Σ_rows dy x̂,  db = Σ_rows dy
// with its row sums in 16 interleaved lanes (reduce.hpp's lane_sum, in double for float),
// which g++ vectorizes, where row_math (the device's code) sums in column order; and dw, db
// summed over the rows in row order for a tile of columns at a time, so the loop over the
// columns vectorizes. Threads split rows (dx, y) or columns (dw, db), never one sum, so
// results are bitwise the same for any thread count.
#include <cmath>
#include <cstddef>

#include "../pass_count.hpp"
#include "../row_math.hpp"
#include "pool.hpp"
#include "reduce.hpp"

namespace ctdl::cpu_kernels {

namespace detail {
template <class F>
void rows_in_parallel(std::size_t rows, std::size_t cols, const F& body) {
    if (rows * cols < (std::size_t{1} << 14) || rows < 2) body(0, rows);
    else cpu_pool().parallel_for(rows, body);
}

/// y = x̂ w + b for one row of n values; returns μ and ρ.
template <class T>
void layer_norm_row(std::size_t n, const T* x, const T* w, const T* b, T* y, T& mu, T& rho, T eps) {
    using A = accumulator_t<T>;
    mu = static_cast<T>(lane_sum<A>(n, [x](std::size_t c) { return static_cast<A>(x[c]); }) / static_cast<A>(n));
    const T m = mu;
    const A v = lane_sum<A>(n, [x, m](std::size_t c) { return static_cast<A>((x[c] - m) * (x[c] - m)); });
    rho = static_cast<T>(A(1) / std::sqrt(v / static_cast<A>(n) + static_cast<A>(eps)));
    const T r = rho;
    for (std::size_t c = 0; c < n; ++c) y[c] = (x[c] - m) * r * w[c] + b[c];
}

/// dx of one row of n values.
template <class T>
void layer_norm_dx_row(std::size_t n, const T* x, const T* w, T mu, T rho, const T* dy, T* dx) {
    using A = accumulator_t<T>;
    const A sg = lane_sum<A>(n, [&](std::size_t c) { return static_cast<A>(dy[c] * w[c]); });
    const A sgx = lane_sum<A>(n, [&](std::size_t c) { return static_cast<A>(dy[c] * w[c] * (x[c] - mu) * rho); });
    const T mg = static_cast<T>(sg / static_cast<A>(n)), mgx = static_cast<T>(sgx / static_cast<A>(n));
    for (std::size_t c = 0; c < n; ++c) dx[c] = rho * (dy[c] * w[c] - mg - (x[c] - mu) * rho * mgx);
}

/// dw[c0 .. c0 + nc), db[...] summed over all rows in row order (accumulators of T).
template <class T>
void layer_norm_dw_tile(std::size_t rows, std::size_t cols, std::size_t c0, std::size_t nc, const T* x,
                        const T* mean, const T* rstd, const T* dy, T* dw, T* db, bool accumulate) {
    T sw[col_tile], sb[col_tile];
    for (std::size_t j = 0; j < nc; ++j) {
        sw[j] = accumulate ? dw[c0 + j] : T(0);
        sb[j] = accumulate ? db[c0 + j] : T(0);
    }
    for (std::size_t r = 0; r < rows; ++r) {
        const T* xr = x + r * cols + c0;
        const T* gr = dy + r * cols + c0;
        const T mu = mean[r], rho = rstd[r];
        for (std::size_t j = 0; j < nc; ++j) {
            sw[j] += gr[j] * (xr[j] - mu) * rho;
            sb[j] += gr[j];
        }
    }
    for (std::size_t j = 0; j < nc; ++j) {
        dw[c0 + j] = sw[j];
        db[c0 + j] = sb[j];
    }
}
}  // namespace detail

template <class T>
void layer_norm_forward(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* b, T* y, T* mean,
                        T* rstd, T eps) {
    record_pass(pass::map);
    detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            T mu, rho;
            detail::layer_norm_row(cols, x + r * cols, w, b, y + r * cols, mu, rho, eps);
            if (mean) mean[r] = mu;
            if (rstd) rstd[r] = rho;
        }
    });
}

/// dw, db (may be null when the parameters are frozen) and dx (null when no gradient flows
/// upstream); ep is applied to each finished row of dx.
template <class T, class Epilogue>
void layer_norm_backward(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* mean, const T* rstd,
                         const T* dy, T* dx, T* dw, T* db, bool accumulate, const Epilogue& ep) {
    if (dw) {
        record_pass(pass::reduce);
        const std::size_t units = (cols + detail::lanes - 1) / detail::lanes;  // groups of 16 columns
        detail::for_item_blocks(cpu_pool(), units, rows * cols, [&](std::size_t u0, std::size_t u1) {
            const std::size_t c_end = u1 * detail::lanes < cols ? u1 * detail::lanes : cols;
            for (std::size_t c0 = u0 * detail::lanes; c0 < c_end; c0 += detail::col_tile) {
                const std::size_t nc = c_end - c0 < detail::col_tile ? c_end - c0 : detail::col_tile;
                detail::layer_norm_dw_tile(rows, cols, c0, nc, x, mean, rstd, dy, dw, db, accumulate);
            }
        });
    }
    if (dx) {
        record_pass(pass::map);
        detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                detail::layer_norm_dx_row(cols, x + r * cols, w, mean[r], rstd[r], dy + r * cols, dx + r * cols);
                ep(r, std::size_t{0}, dx + r * cols, cols);
            }
        });
    }
}

/// dx = y (dy - Σ dy y), then ep per row.
template <class T, class Epilogue>
void softmax_backward_rows(std::size_t rows, std::size_t cols, const T* y, const T* dy, T* dx, const Epilogue& ep) {
    record_pass(pass::softmax);
    detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            row_math::softmax_backward(cols, y + r * cols, dy + r * cols, dx + r * cols);
            ep(r, std::size_t{0}, dx + r * cols, cols);
        }
    });
}

}  // namespace ctdl::cpu_kernels
