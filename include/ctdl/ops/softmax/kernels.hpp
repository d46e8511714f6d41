#pragma once
// The softmax ops over the rows of a row-major [rows, cols] block, one task per row:
//   softmax_forward   y = softmax(x) per row
//   softmax_backward  dx = y (dy − Σ dy y) per row, then ep on the finished row
// Each is one pass::softmax.
#include <cstddef>

#include "../../exec/epilogue.hpp"
#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace softmax_detail {
template <class T>
struct forward_rows {
    std::size_t cols;
    const T* x;
    T* y;
    CTDL_HD void operator()(std::size_t r) const { softmax_math::forward_row(cols, x + r * cols, y + r * cols); }
};
template <class T, class Epilogue>
struct backward_rows {
    std::size_t cols;
    const T *y, *dy;
    T* dx;
    Epilogue ep;
    CTDL_HD void operator()(std::size_t r) const {
        softmax_math::backward_row(cols, y + r * cols, dy + r * cols, dx + r * cols);
        ep(r, std::size_t{0}, dx + r * cols, cols);
    }
};
}  // namespace softmax_detail

struct softmax_forward {
    template <class Exec, class T>
    static void run(std::size_t rows, std::size_t cols, const T* x, T* y) {
        record_pass(pass::softmax);
        if (cols) Exec::for_each_index(rows, softmax_detail::forward_rows<T>{cols, x, y}, cols);
    }
};

struct softmax_backward {
    template <class Exec, class T, class Epilogue = epilogue::none>
    static void run(std::size_t rows, std::size_t cols, const T* y, const T* dy, T* dx, const Epilogue& ep = {}) {
        record_pass(pass::softmax);
        if (cols) Exec::for_each_index(rows, softmax_detail::backward_rows<T, Epilogue>{cols, y, dy, dx, ep}, cols);
    }
};

}  // namespace ctdl::ops
