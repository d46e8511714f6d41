#pragma once
// The layer-norm ops, one generic kernel each over the policy's for_each_index:
//   layer_norm_forward   one task per row (μ and ρ kept when the pointers are not null)
//   layer_norm_backward  dw, db (null when the parameters are frozen): one task per tile of
//                        columns; dx (null when no gradient flows upstream): one per row,
//                        then ep on the finished row (the gemm epilogue protocol).
// The column tile is the policy's column_tile (columns one task reduces together: wide on
// the cpu, where the loop over them vectorizes; 1 where threads are many).
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"
#include "../common/policy_traits.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace layer_norm_detail {

template <class T>
struct forward_rows {
    std::size_t cols;
    const T *x, *w, *b;
    T *y, *mean, *rstd;
    T eps;
    CTDL_HD void operator()(std::size_t r) const {
        T mu, rho;
        layer_norm_math::forward_row(cols, x + r * cols, w, b, y + r * cols, mu, rho, eps);
        if (mean) mean[r] = mu;
        if (rstd) rstd[r] = rho;
    }
};

template <std::size_t Tile, class T>
struct dw_tiles {
    std::size_t rows, cols;
    const T *x, *mean, *rstd, *dy;
    T *dw, *db;
    bool accumulate;
    CTDL_HD void operator()(std::size_t t) const {
        const std::size_t c0 = t * Tile, nc = cols - c0 < Tile ? cols - c0 : Tile;
        layer_norm_math::dw_columns<Tile>(rows, cols, c0, nc, x, mean, rstd, dy, dw, db, accumulate);
    }
};

template <class T, class Epilogue>
struct dx_rows {
    std::size_t cols;
    const T *x, *w, *mean, *rstd, *dy;
    T* dx;
    Epilogue ep;
    CTDL_HD void operator()(std::size_t r) const {
        layer_norm_math::dx_row(cols, x + r * cols, w, mean[r], rstd[r], dy + r * cols, dx + r * cols);
        ep(r, std::size_t{0}, dx + r * cols, cols);
    }
};

}  // namespace layer_norm_detail

struct layer_norm_forward {
    template <class Exec, class T>
    static void run(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                    T eps) {
        record_pass(pass::map);
        Exec::for_each_index(rows, layer_norm_detail::forward_rows<T>{cols, x, w, b, y, mean, rstd, eps}, cols);
    }
};

struct layer_norm_backward {
    template <class Exec, class T, class Epilogue>
    static void run(std::size_t rows, std::size_t cols, const T* x, const T* w, const T* mean, const T* rstd,
                    const T* dy, T* dx, T* dw, T* db, bool accumulate, const Epilogue& ep) {
        if (dw) {
            constexpr std::size_t tile = column_tile<Exec>;
            record_pass(pass::reduce);
            Exec::for_each_index((cols + tile - 1) / tile,
                                 layer_norm_detail::dw_tiles<tile, T>{rows, cols, x, mean, rstd, dy, dw, db, accumulate},
                                 rows * tile);
        }
        if (dx) {
            record_pass(pass::map);
            Exec::for_each_index(rows, layer_norm_detail::dx_rows<T, Epilogue>{cols, x, w, mean, rstd, dy, dx, ep}, cols);
        }
    }
};

}  // namespace ctdl::ops
