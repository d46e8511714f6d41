#pragma once
// mse: mean squared error over all elements (torch.nn.functional.mse_loss, mean reduction).
//
//   loss = Σ_i (p_i − y_i)² / N,      dloss/dp_i = 2 (p_i − y_i) / N
//
// predictions and targets have the same shape (any rank); targets are floating point.
// operator() is one pass::reduce; forward_backward writes the gradient while it sums, one
// pass::map. Both run the op ops::mse (include/ctdl/ops/mse/) under the tensors' policy:
// the sum is in double, in chunks fixed by N, so the result does not depend on the thread
// count.
#include <cstddef>
#include <type_traits>

#include "../exec/kernel.hpp"
#include "../ops/mse/kernels.hpp"
#include "common.hpp"

namespace ctdl::loss {

template <shape_like Predictions, shape_like Targets>
struct mse_targets_must_match_predictions {
    static_assert(std::is_same_v<Predictions, Targets>, "mse: targets must have the predictions' shape");
    static constexpr bool value = true;
};

template <shape_like Predictions, shape_like Gradient>
struct mse_gradient_must_match_predictions {
    static_assert(std::is_same_v<Predictions, Gradient>, "mse: the gradient must have the predictions' shape");
    static constexpr bool value = true;
};

struct mse_t {
    /// Mean of the squared differences.
    template <floating_tensor P, floating_tensor Y>
    value_of<P> operator()(const P& predictions, const Y& targets) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<P>, exec_of<Y>>::value);
        return static_cast<value_of<P>>(launch<ops::mse, exec_of<P>>(
            shape_of<P>::size, predictions.data(), targets.data(), static_cast<value_of<P>*>(nullptr)));
    }

    /// Mean of the squared differences, and d(loss)/d(predictions) written to dpredictions.
    template <floating_tensor P, floating_tensor Y, writable_floating_tensor D>
    value_of<P> forward_backward(const P& predictions, const Y& targets, D&& dpredictions) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        static_assert(mse_gradient_must_match_predictions<shape_of<P>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<P>, value_of<D>>, "mse: the gradient must have the predictions' element type");
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<P>, exec_of<Y>, exec_of<D>>::value);
        return static_cast<value_of<P>>(
            launch<ops::mse, exec_of<P>>(shape_of<P>::size, predictions.data(), targets.data(), dpredictions.data()));
    }
};

inline constexpr mse_t mse{};

}  // namespace ctdl::loss
