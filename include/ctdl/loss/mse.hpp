#pragma once
// mse: mean squared error over all elements (torch.nn.functional.mse_loss, mean reduction).
//
//   loss = Σ_i (p_i − y_i)² / N,      dloss/dp_i = 2 (p_i − y_i) / N
//
// predictions and targets have the same shape (any rank); targets are floating point.
// operator() is one pass::reduce; forward_backward writes the gradient while it sums, one
// pass::map. Sums are in double, in chunks that do not depend on the thread count.
//
// On a policy that is not host-accessible (device) the gradient is one elementwise
// Exec::for_each_index and the loss one Exec::sum (in double; the device system's order).
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

namespace detail {

/// (p_i - y_i)^2, in double.
template <class T, class U>
struct mse_term {
    const T* p;
    const U* y;
    CTDL_HD double operator()(std::size_t i) const {
        const T d = p[i] - static_cast<T>(y[i]);
        return static_cast<double>(d) * static_cast<double>(d);
    }
};

/// dp_i = k (p_i - y_i), with k = 2 / N.
template <class T, class U>
struct mse_gradient {
    const T* p;
    const U* y;
    T* dp;
    T k;
    CTDL_HD void operator()(std::size_t i) const { dp[i] = k * (p[i] - static_cast<T>(y[i])); }
};

}  // namespace detail

struct mse_t {
    /// Mean of the squared differences.
    template <floating_tensor P, floating_tensor Y>
    value_of<P> operator()(const P& predictions, const Y& targets) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<P>, exec_of<Y>>::value);
        record_pass(pass::reduce);
        if constexpr (exec_of<P>::host_accessible)
            return run<shape_of<P>::size>(predictions.data(), targets.data(), static_cast<value_of<P>*>(nullptr));
        else
            return run_on<exec_of<P>, shape_of<P>::size>(predictions.data(), targets.data(),
                                                         static_cast<value_of<P>*>(nullptr));
    }

    /// Mean of the squared differences, and d(loss)/d(predictions) written to dpredictions.
    template <floating_tensor P, floating_tensor Y, writable_floating_tensor D>
    value_of<P> forward_backward(const P& predictions, const Y& targets, D&& dpredictions) const {
        static_assert(mse_targets_must_match_predictions<shape_of<P>, shape_of<Y>>::value);
        static_assert(mse_gradient_must_match_predictions<shape_of<P>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<P>, value_of<D>>, "mse: the gradient must have the predictions' element type");
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<P>, exec_of<Y>, exec_of<D>>::value);
        record_pass(pass::map);
        if constexpr (exec_of<P>::host_accessible)
            return run<shape_of<P>::size>(predictions.data(), targets.data(), dpredictions.data());
        else
            return run_on<exec_of<P>, shape_of<P>::size>(predictions.data(), targets.data(), dpredictions.data());
    }

private:
    // Through the policy's primitives: the gradient (if asked for), then the sum.
    template <class Exec, std::size_t N, class T, class U>
    static T run_on(const T* p, const U* y, T* dp) {
        if (dp) Exec::for_each_index(N, detail::mse_gradient<T, U>{p, y, dp, static_cast<T>(2.0 / static_cast<double>(N))});
        const double sum = Exec::sum(N, detail::mse_term<T, U>{p, y});
        return static_cast<T>(sum / static_cast<double>(N));
    }

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
