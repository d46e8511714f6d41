#pragma once
// The cross-entropy op over [rows, classes] logits with one integer target per row, one
// generic kernel over the policy's sum and for_each_index (the math: math.hpp):
//
//   1. the unusable rows are counted (an Exec::sum): if there are any, the op returns
//      their count and writes nothing (the caller names the first one);
//   2. Σ w_r (an Exec::sum; rows itself when there is neither a mask nor ignore_index);
//   3. the loss alone: one Exec::sum of w_r loss_r over the rows. With the gradient: one
//      task per row (Exec::for_each_index) writes its gradient row and w_r loss_r into a
//      scratch of one double per row, then an Exec::sum of the scratch. Both sum the same
//      values in the same order, so the loss is the same bits with and without gradient.
//
// The scratch is the calling thread's, in Exec's memory, grown to the largest batch seen
// (the op is stateless), so a training loop allocates only in its first step. Step 3 is
// one pass::softmax.
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace cross_entropy_detail {

/// At least n doubles of Exec's memory, the calling thread's, valid until its next call.
template <class Exec>
double* row_scratch(std::size_t n) {
    using buffer = typename Exec::template buffer<double>;
    static thread_local buffer b;
    if (b.size() < n) {
        buffer bigger(n);
        b.swap(bigger);
    }
    return b.data();
}

/// out[r] = f(r).
template <class F>
struct store_in {
    F f;
    double* out;
    CTDL_HD void operator()(std::size_t r) const { out[r] = f(r); }
};

/// p[r] (the Exec::sum over the scratch).
struct read {
    const double* p;
    CTDL_HD double operator()(std::size_t r) const { return p[r]; }
};

}  // namespace cross_entropy_detail

/// What the op returns: the mean loss Σ w_r loss_r / Σ w_r (0 when Σ w_r = 0), or the
/// number of unusable rows (then nothing was computed or written).
struct cross_entropy_result {
    double loss = 0;
    std::size_t invalid_rows = 0;
};

struct cross_entropy {
    /// mask may be null (every weight 1), dx may be null (loss only).
    template <class Exec, class T, class I, class W>
    static cross_entropy_result run(std::size_t rows, std::size_t classes, const T* x, const I* y, const W* mask,
                                    T* dx, cross_entropy_math::ignore_rule ignored) {
        namespace m = cross_entropy_math;
        const double invalid = Exec::sum(rows, m::invalid_row<I, W>{y, mask, classes, ignored});
        if (invalid != 0) return {0, static_cast<std::size_t>(invalid)};
        const double total_weight =
            !mask && !ignored.active ? static_cast<double>(rows) : Exec::sum(rows, m::row_weight<I, W>{y, mask, ignored});
        record_pass(pass::softmax);
        const double inv_total = total_weight > 0 ? 1 / total_weight : 0;

        const m::weighted_rows<T, I, W> row{x, y, mask, dx, classes, ignored, inv_total};
        double sum;
        if (dx) {
            double* losses = cross_entropy_detail::row_scratch<Exec>(rows);
            Exec::for_each_index(rows, cross_entropy_detail::store_in<m::weighted_rows<T, I, W>>{row, losses}, classes);
            sum = Exec::sum(rows, cross_entropy_detail::read{losses});
        } else {
            sum = Exec::sum(rows, row, classes);
        }
        return {sum * inv_total, 0};
    }
};

}  // namespace ctdl::ops
