#pragma once
// Row-wise kernels of the normalising layers on the cpu pool, with the epilogue protocol of
// gemm for the gradient they hand upstream. The per-row math is exec/row_math.hpp, shared
// with the device policy; columns of dw are summed in row order, so results are
// deterministic.
#include <cmath>
#include <cstddef>

#include "../pass_count.hpp"
#include "../row_math.hpp"
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
        for (std::size_t r = r0; r < r1; ++r)
            row_math::layer_norm_forward(cols, x + r * cols, w, b, y + r * cols, mean ? mean + r : nullptr,
                                         rstd ? rstd + r : nullptr, eps);
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
            for (std::size_t c = c0; c < c1; ++c)
                row_math::layer_norm_dw_column(rows, cols, c, x, mean, rstd, dy, dw, db, accumulate);
        });
    }
    if (dx) {
        record_pass(pass::map);
        detail::rows_in_parallel(rows, cols, [&](std::size_t r0, std::size_t r1) {
            for (std::size_t r = r0; r < r1; ++r) {
                row_math::layer_norm_dx(cols, x + r * cols, w, mean[r], rstd[r], dy + r * cols, dx + r * cols);
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
