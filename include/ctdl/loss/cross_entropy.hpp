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
// rows is in double, in chunks fixed by the row count, so the result does not depend on
// the thread count, and the loss is the same bits with and without the gradient.
//
// Every call runs the op ops::cross_entropy (include/ctdl/ops/cross_entropy/: the row math
// once, one generic kernel) under the tensors' policy, which first counts the bad rows
// where the data lives; only when there are some are the targets and mask copied to the
// host, to name the first in the message.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../exec/kernel.hpp"
#include "../ops/cross_entropy/kernels.hpp"
#include "common.hpp"

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
    // mask may be null (every weight 1), dx may be null (loss only).
    template <shape_like Shape, class Exec, class T, class I, class W>
    T dispatch(const T* x, const I* y, const W* mask, T* dx) const {
        constexpr std::size_t rows = leading_size<Shape>, classes = last_extent<Shape>;
        const ops::cross_entropy_math::ignore_rule ignored{ignore_index.has_value(), ignore_index.value_or(0)};
        const ops::cross_entropy_result r = launch<ops::cross_entropy, Exec>(rows, classes, x, y, mask, dx, ignored);
        if (r.invalid_rows != 0) throw_invalid<Shape, Exec>(y, mask, ignored);
        return static_cast<T>(r.loss);
    }

    // Some row is unusable: copies targets and mask to the host and names the first.
    template <shape_like Shape, class Exec, class I, class W>
    [[noreturn]] void throw_invalid(const I* y, const W* mask, ops::cross_entropy_math::ignore_rule ignored) const {
        constexpr std::size_t rows = leading_size<Shape>, classes = last_extent<Shape>;
        std::vector<I> host_y(rows);
        Exec::copy_to_host(y, host_y.data(), rows);
        std::vector<W> host_mask(mask ? rows : 0);
        if (mask) Exec::copy_to_host(mask, host_mask.data(), rows);
        const ops::cross_entropy_math::invalid_row<I, W> invalid{host_y.data(), mask ? host_mask.data() : nullptr,
                                                                 classes, ignored};
        std::size_t r = 0;
        while (r + 1 < rows && invalid(r) == 0) ++r;
        const std::string where = detail::row_name<leading_shape<Shape>>(r);
        if (!ops::cross_entropy_math::target_in_range(host_y[r], classes))
            throw error("cross_entropy: target " + std::to_string(host_y[r]) + " at " + where + " is outside [0, " +
                        std::to_string(classes) + ")" +
                        (ignore_index ? " and is not ignore_index (" + std::to_string(*ignore_index) + ")" : ""));
        throw error("cross_entropy: mask value " + std::to_string(static_cast<double>(host_mask[r])) + " at " + where +
                    " must be finite and >= 0");
    }
};

/// Cross entropy with every row counted: ctdl::loss::cross_entropy(logits, targets).
inline constexpr cross_entropy_t cross_entropy{};

}  // namespace ctdl::loss
