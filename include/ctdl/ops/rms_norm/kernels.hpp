#pragma once
// The RMS-norm ops, one generic kernel each over the policy's for_each_index:
//   rms_norm_forward   one task per row (ρ kept when the pointer is not null)
//   rms_norm_backward  dw (null when the weight is frozen): one task per tile of columns;
//                      dx (null when no gradient flows upstream): one per row, then ep on
//                      the finished row (the gemm epilogue protocol)
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"
#include "../common/policy_traits.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace rms_norm_detail {

template <class T>
struct forward_rows {
    std::size_t cols;
    const T *x, *w;
    T *y, *rstd;
    T eps;
    CTDL_HD void operator()(std::size_t r) const {
        const T rho = rms_norm_math::forward_row(cols, x + r * cols, w, y + r * cols, eps);
        if (rstd) rstd[r] = rho;
    }
};

template <std::size_t Tile, class T>
struct dw_tiles {
    std::size_t rows, cols;
    const T *x, *rstd, *dy;
    T* dw;
    bool accumulate;
    CTDL_HD void operator()(std::size_t t) const {
        const std::size_t c0 = t * Tile, nc = cols - c0 < Tile ? cols - c0 : Tile;
        rms_norm_math::dw_columns<Tile>(rows, cols, c0, nc, x, rstd, dy, dw, accumulate);
    }
};

template <class T, class Epilogue>
struct dx_rows {
    std::size_t cols;
    const T *x, *w, *rstd, *dy;
    T* dx;
    Epilogue ep;
    CTDL_HD void operator()(std::size_t r) const {
        rms_norm_math::dx_row(cols, x + r * cols, w, rstd[r], dy + r * cols, dx + r * cols);
        ep(r, std::size_t{0}, dx + r * cols, cols);
    }
};

}  // namespace rms_norm_detail

struct rms_norm_forward {
    template <class Exec, class T>
    static void run(std::size_t rows, std::size_t cols, const T* x, const T* w, T* y, T* rstd, T eps) {
        record_pass(pass::map);
        Exec::for_each_index(rows, rms_norm_detail::forward_rows<T>{cols, x, w, y, rstd, eps}, cols);
    }
};

struct rms_norm_backward {
    template <class Exec, class T, class Epilogue>
    static void run(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* rstd, const T* dy, T* dx,
                    T* dw, bool accumulate, const Epilogue& ep) {
        if (dw) {
            constexpr std::size_t tile = column_tile<Exec>;
            record_pass(pass::reduce);
            Exec::for_each_index((cols + tile - 1) / tile,
                                 rms_norm_detail::dw_tiles<tile, T>{rows, cols, x, rstd, dy, dw, accumulate}, rows * tile);
        }
        if (dx) {
            record_pass(pass::map);
            Exec::for_each_index(rows, rms_norm_detail::dx_rows<T, Epilogue>{cols, x, w, rstd, dy, dx, ep}, cols);
        }
    }
};

}  // namespace ctdl::ops
