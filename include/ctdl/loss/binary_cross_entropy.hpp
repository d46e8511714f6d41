#pragma once
// binary_cross_entropy_with_logits: the sigmoid and the binary cross entropy together
// (torch.nn.functional.binary_cross_entropy_with_logits, mean reduction), in the form that
// never overflows:
//
//   loss_i = max(x_i, 0) − x_i y_i + log(1 + exp(−|x_i|)),       loss = Σ_i loss_i / N
//   dloss/dx_i = (sigmoid(x_i) − y_i) / N
//
// logits and targets have the same shape (any rank); targets are probabilities in [0, 1]
// (not checked: soft labels are fine). operator() is one pass::reduce; forward_backward
// writes the gradient while it sums, one pass::map. Both run the op
// ops::binary_cross_entropy_with_logits (include/ctdl/ops/binary_cross_entropy/) under the
// tensors' policy: the sum is in double, in chunks fixed by N, so the result does not
// depend on the thread count.
#include <cstddef>
#include <type_traits>

#include "../exec/kernel.hpp"
#include "../ops/binary_cross_entropy/kernels.hpp"
#include "common.hpp"

namespace ctdl::loss {

template <shape_like Logits, shape_like Targets>
struct binary_cross_entropy_targets_must_match_logits {
    static_assert(std::is_same_v<Logits, Targets>, "binary_cross_entropy_with_logits: targets must have the logits' shape");
    static constexpr bool value = true;
};

template <shape_like Logits, shape_like Gradient>
struct binary_cross_entropy_gradient_must_match_logits {
    static_assert(std::is_same_v<Logits, Gradient>, "binary_cross_entropy_with_logits: dlogits must have the logits' shape");
    static constexpr bool value = true;
};

struct binary_cross_entropy_with_logits_t {
    template <floating_tensor L, floating_tensor Y>
    value_of<L> operator()(const L& logits, const Y& targets) const {
        static_assert(binary_cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>>::value);
        return static_cast<value_of<L>>(launch<ops::binary_cross_entropy_with_logits, exec_of<L>>(
            shape_of<L>::size, logits.data(), targets.data(), static_cast<value_of<L>*>(nullptr)));
    }

    template <floating_tensor L, floating_tensor Y, writable_floating_tensor D>
    value_of<L> forward_backward(const L& logits, const Y& targets, D&& dlogits) const {
        static_assert(binary_cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(binary_cross_entropy_gradient_must_match_logits<shape_of<L>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<L>, value_of<D>>,
                      "binary_cross_entropy_with_logits: dlogits must have the logits' element type");
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>, exec_of<D>>::value);
        return static_cast<value_of<L>>(launch<ops::binary_cross_entropy_with_logits, exec_of<L>>(
            shape_of<L>::size, logits.data(), targets.data(), dlogits.data()));
    }
};

inline constexpr binary_cross_entropy_with_logits_t binary_cross_entropy_with_logits{};

}  // namespace ctdl::loss
