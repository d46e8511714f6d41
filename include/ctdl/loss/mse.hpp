#pragma once
// mse: mean squared error over all elements (torch.nn.functional.mse_loss, mean reduction).
//
//   loss = Σ_i (p_i − y_i)² / N,      dloss/dp_i = 2 (p_i − y_i) / N
//
// predictions and targets have the same shape (any rank); targets are floating point.
// operator() is one pass::reduce; forward_backward writes the gradient while it sums, one
// pass::map. Sums are in double, in chunks that do not depend on the thread count.
#include <cstddef>
#include <type_traits>

#include "../exec/pass_count.hpp"
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
    template <host_floating_tensor P, host_floating_tensor Y>
    value_of<P> operator()(const P& predictions, const Y& targets) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        record_pass(pass::reduce);
        return run<shape_of<P>::size>(predictions.data(), targets.data(), static_cast<value_of<P>*>(nullptr));
    }

    /// Mean of the squared differences, and d(loss)/d(predictions) written to dpredictions.
    template <host_floating_tensor P, host_floating_tensor Y, writable_host_floating_tensor D>
    value_of<P> forward_backward(const P& predictions, const Y& targets, D&& dpredictions) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        static_assert(mse_gradient_must_match_predictions<shape_of<P>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<P>, value_of<D>>, "mse: the gradient must have the predictions' element type");
        record_pass(pass::map);
        return run<shape_of<P>::size>(predictions.data(), targets.data(), dpredictions.data());
    }

private:
    template <std::size_t N, class T, class U>
    static T run(const T* p, const U* y, T* dp) {
        const T k = static_cast<T>(2.0 / static_cast<double>(N));
        const double sum = detail::chunked_sum(N, N, [&](std::size_t begin, std::size_t end) {
            double s = 0;
            for (std::size_t i = begin; i < end; ++i) {
                const T d = p[i] - static_cast<T>(y[i]);
                if (dp) dp[i] = k * d;
                s += static_cast<double>(d) * static_cast<double>(d);
            }
            return s;
        });
        return static_cast<T>(sum / static_cast<double>(N));
    }
};

inline constexpr mse_t mse{};

}  // namespace ctdl::loss
