#pragma once
// cross_entropy: softmax and negative log-likelihood in one pass per row.
//
// logits [rows..., C] (any rank >= 1), integer targets [rows...] with values in [0, C):
//
//   loss_r = log Σ_j exp(x_rj) − x_r,t(r)                     (with the row max subtracted first)
//   loss   = Σ_r w_r loss_r / Σ_r w_r
//   dloss/dx_rj = w_r / Σ w · (softmax(x_r)_j − [j == t(r)])
//
// w_r is 1, or mask_r with the mask overloads (a per-row weight >= 0, e.g. 0 for prompt
// tokens and 1 for response tokens), and 0 for a row whose target is ignore_index (as in
// PyTorch, the mean is over the rows that count). When every row is ignored or masked out
// the loss is 0 and so is the gradient. A target outside [0, C) that is not ignore_index,
// or a mask value that is negative or not finite, throws ctdl::error before anything is
// written.
//
//   const float l = ctdl::loss::cross_entropy(logits, y);                // mean loss
//   const float l = ctdl::loss::cross_entropy.forward_backward(logits, y, dlogits);
//   ctdl::loss::cross_entropy_t{.ignore_index = -100}(logits, y);        // PyTorch's padding label
//
// Unlike PyTorch, nothing is ignored unless ignore_index is given, so a stray -100 is an
// error rather than a silently dropped row. Each call is one pass::softmax; the sum over
// rows is in double, in chunks that do not depend on the thread count.
//
// On a policy that is not host-accessible (device; logits, targets, mask and dlogits all
// live there) the targets are checked by an Exec::sum that counts the bad rows (only when
// there are some are targets and mask copied to the host, to name the first in the
// message); then one row-parallel Exec::for_each_index (max, log-sum-exp, loss term,
// gradient) writes the per-row losses into a device scratch of one double per row, and an
// Exec::sum over that scratch gives the mean. The scratch is the calling thread's, grown to
// the largest batch seen (losses are stateless objects), so a training loop allocates only
// in its first step; the loss-only operator() needs none (one Exec::sum over the rows).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../exec/pass_count.hpp"
#include "common.hpp"
#include "cross_entropy_rows.hpp"

namespace ctdl::loss {

namespace detail {
template <class Targets, class Logits>
constexpr bool is_leading_shape_of() {
    if constexpr (Logits::rank == 0)
        return false;
    else
        return std::is_same_v<Targets, leading_shape<Logits>>;
}

/// "row 7", or "row 7 (index [1, 3] of targets shape [2, 4])" for rank >= 2.
template <shape_like Rows>
std::string row_name(std::size_t r) {
    std::string s = "row " + std::to_string(r);
    if constexpr (Rows::rank >= 2) {
        std::string index, extents;
        for (std::size_t a = 0; a < Rows::rank; ++a) {
            const char* sep = a == 0 ? "" : ", ";
            index.append(sep).append(std::to_string(r / Rows::strides[a] % Rows::extents[a]));
            extents.append(sep).append(std::to_string(Rows::extents[a]));
        }
        s += " (index [" + index + "] of targets shape [" + extents + "])";
    }
    return s;
}
}  // namespace detail

/// Logits [rows..., C] need targets [rows...]; the class name carries both shapes.
template <shape_like Logits, shape_like Targets>
struct cross_entropy_targets_must_match_logits {
    static_assert(Logits::rank >= 1, "cross_entropy: logits need at least one axis (the classes)");
    static_assert(detail::is_leading_shape_of<Targets, Logits>(),
                  "cross_entropy: targets must have the logits' shape without its last axis "
                  "(logits [rows..., classes], targets [rows...])");
    static constexpr bool value = true;
};

/// The gradient output has the logits' shape.
template <shape_like Logits, shape_like Gradient>
struct cross_entropy_gradient_must_match_logits {
    static_assert(std::is_same_v<Logits, Gradient>, "cross_entropy: dlogits must have the logits' shape");
    static constexpr bool value = true;
};

/// The mask has one weight per target.
template <shape_like Targets, shape_like Mask>
struct cross_entropy_mask_must_match_targets {
    static_assert(std::is_same_v<Targets, Mask>, "cross_entropy: the mask must have the targets' shape (one weight per row)");
    static constexpr bool value = true;
};

struct cross_entropy_t {
    /// Rows whose target equals this contribute nothing (PyTorch uses -100 for padding).
    std::optional<std::int64_t> ignore_index{};

    /// Mean loss.
    template <floating_tensor L, integer_tensor Y>
    value_of<L> operator()(const L& logits, const Y& targets) const {
        static_assert(cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>>::value);
        return dispatch<shape_of<L>, exec_of<L>>(logits.data(), targets.data(), static_cast<const float*>(nullptr),
                                                 static_cast<value_of<L>*>(nullptr));
    }

    /// Mean loss weighted per row by mask (mean over Σ mask).
    template <floating_tensor L, integer_tensor Y, floating_tensor M>
    value_of<L> operator()(const L& logits, const Y& targets, const M& mask) const {
        static_assert(cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(cross_entropy_mask_must_match_targets<shape_of<Y>, shape_of<M>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>, exec_of<M>>::value);
        return dispatch<shape_of<L>, exec_of<L>>(logits.data(), targets.data(), mask.data(),
                                                 static_cast<value_of<L>*>(nullptr));
    }

    /// Mean loss, and d(loss)/d(logits) written to dlogits, in one pass.
    template <floating_tensor L, integer_tensor Y, writable_floating_tensor D>
    value_of<L> forward_backward(const L& logits, const Y& targets, D&& dlogits) const {
        static_assert(cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(cross_entropy_gradient_must_match_logits<shape_of<L>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<L>, value_of<D>>, "cross_entropy: dlogits must have the logits' element type");
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>, exec_of<D>>::value);
        return dispatch<shape_of<L>, exec_of<L>>(logits.data(), targets.data(), static_cast<const float*>(nullptr),
                                                 dlogits.data());
    }

    /// As above, weighted per row by mask.
    template <floating_tensor L, integer_tensor Y, floating_tensor M, writable_floating_tensor D>
    value_of<L> forward_backward(const L& logits, const Y& targets, const M& mask, D&& dlogits) const {
        static_assert(cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(cross_entropy_mask_must_match_targets<shape_of<Y>, shape_of<M>>::value);
        static_assert(cross_entropy_gradient_must_match_logits<shape_of<L>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<L>, value_of<D>>, "cross_entropy: dlogits must have the logits' element type");
        static_assert(
            loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>, exec_of<M>, exec_of<D>>::value);
        return dispatch<shape_of<L>, exec_of<L>>(logits.data(), targets.data(), mask.data(), dlogits.data());
    }

private:
    template <class I>
    bool ignored(I t) const noexcept {
        return ignore_index && std::cmp_equal(t, *ignore_index);
    }

    template <shape_like Shape, class Exec, class T, class I, class W>
    T dispatch(const T* x, const I* y, const W* mask, T* dx) const {
        if constexpr (Exec::host_accessible)
            return run<Shape>(x, y, mask, dx);
        else
            return run_on<Shape, Exec>(x, y, mask, dx);
    }

    // Host targets and weights: throws on a bad one, else returns Σ w_r.
    template <shape_like Shape, class I, class W>
    double checked_total_weight(const I* y, const W* mask) const {
        using rows_shape = leading_shape<Shape>;
        constexpr std::size_t rows = leading_size<Shape>, classes = last_extent<Shape>;
        double total_weight = 0;
        for (std::size_t r = 0; r < rows; ++r) {
            if (ignored(y[r])) continue;
            if (std::cmp_less(y[r], 0) || std::cmp_greater_equal(y[r], classes))
                throw error("cross_entropy: target " + std::to_string(y[r]) + " at " +
                            detail::row_name<rows_shape>(r) + " is outside [0, " + std::to_string(classes) + ")" +
                            (ignore_index ? " and is not ignore_index (" + std::to_string(*ignore_index) + ")" : ""));
            if (mask) {
                const double w = static_cast<double>(mask[r]);
                if (!(w >= 0) || !std::isfinite(w))
                    throw error("cross_entropy: mask value " + std::to_string(w) + " at " +
                                detail::row_name<rows_shape>(r) + " must be finite and >= 0");
                total_weight += w;
            } else {
                total_weight += 1;
            }
        }
        return total_weight;
    }

    // mask may be null (every weight 1), dx may be null (loss only).
    template <shape_like Shape, class T, class I, class W>
    T run(const T* x, const I* y, const W* mask, T* dx) const {
        constexpr std::size_t rows = leading_size<Shape>, classes = last_extent<Shape>;

        // Targets and weights first: a bad one throws before anything is written.
        const double total_weight = checked_total_weight<Shape>(y, mask);
        record_pass(pass::softmax);
        const double inv_total = total_weight > 0 ? 1 / total_weight : 0;

        const double sum = detail::chunked_sum(rows, rows * classes, [&](std::size_t begin, std::size_t end) {
            double partial = 0;
            for (std::size_t r = begin; r < end; ++r) {
                const T* const xr = x + r * classes;
                T* const dr = dx ? dx + r * classes : nullptr;
                const double w = ignored(y[r]) ? 0 : mask ? static_cast<double>(mask[r]) : 1;
                if (w == 0 || inv_total == 0) {
                    if (dr)
                        for (std::size_t j = 0; j < classes; ++j) dr[j] = 0;
                    continue;
                }
                const std::size_t t = static_cast<std::size_t>(y[r]);
                T m = xr[0];
                for (std::size_t j = 1; j < classes; ++j) m = xr[j] > m ? xr[j] : m;
                double s = 0;  // Σ exp(x - m), in double
                if (dr) {
                    for (std::size_t j = 0; j < classes; ++j) {
                        const T e = std::exp(xr[j] - m);
                        dr[j] = e;
                        s += static_cast<double>(e);
                    }
                } else {
                    for (std::size_t j = 0; j < classes; ++j) s += static_cast<double>(std::exp(xr[j] - m));
                }
                partial += w * (static_cast<double>(m) + std::log(s) - static_cast<double>(xr[t]));
                if (dr) {
                    const double scale = w * inv_total;
                    const T k = static_cast<T>(scale / s);
                    for (std::size_t j = 0; j < classes; ++j) dr[j] *= k;
                    dr[t] -= static_cast<T>(scale);
                }
            }
            return partial;
        });
        return static_cast<T>(sum * inv_total);
    }

    // The same on a policy whose memory the host cannot read: Exec's primitives only.
    template <shape_like Shape, class Exec, class T, class I, class W>
    T run_on(const T* x, const I* y, const W* mask, T* dx) const {
        constexpr std::size_t rows = leading_size<Shape>, classes = last_extent<Shape>;
        const detail::ignore_rule ignored{ignore_index.has_value(), ignore_index.value_or(0)};

        // Targets and weights first: count the bad rows there; name the first from a host copy.
        if (Exec::sum(rows, detail::ce_invalid_row<I, W>{y, mask, classes, ignored}) != 0) {
            std::vector<I> host_y(rows);
            Exec::copy_to_host(y, host_y.data(), rows);
            std::vector<W> host_mask(mask ? rows : 0);
            if (mask) Exec::copy_to_host(mask, host_mask.data(), rows);
            checked_total_weight<Shape>(host_y.data(), mask ? host_mask.data() : static_cast<const W*>(nullptr));
            throw error("cross_entropy: a target or mask value is invalid");  // not reached: the check above throws
        }
        const double total_weight = !mask && !ignore_index ? static_cast<double>(rows)
                                                           : Exec::sum(rows, detail::ce_row_weight<I, W>{y, mask, ignored});
        record_pass(pass::softmax);
        const double inv_total = total_weight > 0 ? 1 / total_weight : 0;

        const detail::ce_row<T, I, W> row{x, y, mask, dx, classes, ignored, inv_total};
        double sum;
        if (dx) {
            double* losses = detail::row_scratch<Exec>(rows);
            Exec::for_each_index(rows, detail::store_in<detail::ce_row<T, I, W>>{row, losses});
            sum = Exec::sum(rows, detail::read_as_double<double>{losses});
        } else {
            sum = Exec::sum(rows, row);
        }
        return static_cast<T>(sum * inv_total);
    }
};

/// Cross entropy with every row counted: ctdl::loss::cross_entropy(logits, targets).
inline constexpr cross_entropy_t cross_entropy{};

}  // namespace ctdl::loss
