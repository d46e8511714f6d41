#pragma once
// Row-wise kernels of the normalising layers, with the epilogue protocol of gemm for the
// gradient they hand upstream.
//
// layer norm over the last axis, per row r (x̂ = (x - μ) ρ, ρ = 1/√(σ² + ε), biased σ²):
//   forward   y = x̂ w + b                       (keeps μ, ρ per row when asked)
//   backward  g = dy w
//             dx = ρ (g - mean(g) - x̂ mean(g x̂))
//             dw = Σ_r dy x̂,  db = Σ_r dy       (columns summed in row order: deterministic)
// softmax backward: dx = y (dy - Σ dy y)
#include <cmath>
#include <cstddef>

#include "../pass_count.hpp"
#include "pool.hpp"

namespace ctdl::cpu_kernels {

namespace detail {
template <class F>
void rows_in_parallel(std::size_t rows, std::size_t cols, const F& body) {
    if (rows * cols < (std::size_t{1} << 14) || rows < 2) body(0, rows);
    else cpu_pool().parallel_for(rows, body);
}
}  // namespace detail

template <class T>
void layer_norm_forward(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* b, T* y, T* mean,
                        T* rstd, T eps) {
    record_pass(pass::map);
    detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const T* xr = x + r * cols;
            T* yr = y + r * cols;
            double s = 0;
            for (std::size_t c = 0; c < cols; ++c) s += xr[c];
            const T mu = static_cast<T>(s / static_cast<double>(cols));
            double v = 0;
            for (std::size_t c = 0; c < cols; ++c) v += static_cast<double>((xr[c] - mu) * (xr[c] - mu));
            const T rho = static_cast<T>(1.0 / std::sqrt(v / static_cast<double>(cols) + static_cast<double>(eps)));
            for (std::size_t c = 0; c < cols; ++c) yr[c] = (xr[c] - mu) * rho * w[c] + b[c];
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
        cpu_pool().parallel_for(cols, [&](std::size_t c0, std::size_t c1) {
            for (std::size_t c = c0; c < c1; ++c) {
                T sw = accumulate ? dw[c] : T(0), sb = accumulate ? db[c] : T(0);
                for (std::size_t r = 0; r < rows; ++r) {
                    const T g = dy[r * cols + c];
                    sw += g * (x[r * cols + c] - mean[r]) * rstd[r];
                    sb += g;
                }
                dw[c] = sw;
                db[c] = sb;
            }
        });
    }
    if (dx) {
        record_pass(pass::map);
        detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                const T* xr = x + r * cols;
                const T* dyr = dy + r * cols;
                T* dxr = dx + r * cols;
                const T mu = mean[r], rho = rstd[r];
                double sg = 0, sgx = 0;
                for (std::size_t c = 0; c < cols; ++c) {
                    const T g = dyr[c] * w[c];
                    sg += g;
                    sgx += g * (xr[c] - mu) * rho;
                }
                const T mg = static_cast<T>(sg / static_cast<double>(cols));
                const T mgx = static_cast<T>(sgx / static_cast<double>(cols));
                for (std::size_t c = 0; c < cols; ++c)
                    dxr[c] = rho * (dyr[c] * w[c] - mg - (xr[c] - mu) * rho * mgx);
                ep(r, std::size_t{0}, dxr, cols);
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
            const T* yr = y + r * cols;
            const T* dyr = dy + r * cols;
            T* dxr = dx + r * cols;
            T dot = 0;
            for (std::size_t c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
            for (std::size_t c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
            ep(r, std::size_t{0}, dxr, cols);
        }
    });
}

}  // namespace ctdl::cpu_kernels
