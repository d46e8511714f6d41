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
// writes the gradient while it sums, one pass::map.
//
// On a policy that is not host-accessible (device) the gradient is one elementwise
// Exec::for_each_index and the loss one Exec::sum (in double; the device system's order).
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../exec/pass_count.hpp"
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

namespace detail {

/// max(x, 0) - x y + log(1 + exp(-|x|)), in double.
template <class T, class U>
struct bce_term {
    const T* x;
    const U* y;
    CTDL_HD double operator()(std::size_t i) const {
        const T xi = x[i], yi = static_cast<T>(y[i]);
        const T e = std::exp(-std::abs(xi));
        return static_cast<double>((xi > 0 ? xi : T(0)) - xi * yi + std::log1p(e));
    }
};

/// dx_i = (sigmoid(x_i) - y_i) / N.
template <class T, class U>
struct bce_gradient {
    const T* x;
    const U* y;
    T* dx;
    T inv_n;
    CTDL_HD void operator()(std::size_t i) const {
        const T xi = x[i], yi = static_cast<T>(y[i]);
        const T e = std::exp(-std::abs(xi));
        const T sigmoid = xi >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
        dx[i] = (sigmoid - yi) * inv_n;
    }
};

}  // namespace detail

struct binary_cross_entropy_with_logits_t {
    template <floating_tensor L, floating_tensor Y>
    value_of<L> operator()(const L& logits, const Y& targets) const {
        static_assert(binary_cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>>::value);
        record_pass(pass::reduce);
        if constexpr (exec_of<L>::host_accessible)
            return run<shape_of<L>::size>(logits.data(), targets.data(), static_cast<value_of<L>*>(nullptr));
        else
            return run_on<exec_of<L>, shape_of<L>::size>(logits.data(), targets.data(),
                                                         static_cast<value_of<L>*>(nullptr));
    }

    template <floating_tensor L, floating_tensor Y, writable_floating_tensor D>
    value_of<L> forward_backward(const L& logits, const Y& targets, D&& dlogits) const {
        static_assert(binary_cross_entropy_targets_must_match_logits<shape_of<L>, shape_of<Y>>::value);
        static_assert(binary_cross_entropy_gradient_must_match_logits<shape_of<L>, shape_of<D>>::value);
        static_assert(std::is_same_v<value_of<L>, value_of<D>>,
                      "binary_cross_entropy_with_logits: dlogits must have the logits' element type");
        static_assert(loss_tensors_must_live_under_one_policy<exec_of<L>, exec_of<Y>, exec_of<D>>::value);
        record_pass(pass::map);
        if constexpr (exec_of<L>::host_accessible)
            return run<shape_of<L>::size>(logits.data(), targets.data(), dlogits.data());
        else
            return run_on<exec_of<L>, shape_of<L>::size>(logits.data(), targets.data(), dlogits.data());
    }

private:
    // Through the policy's primitives: the gradient (if asked for), then the sum.
    template <class Exec, std::size_t N, class T, class U>
    static T run_on(const T* x, const U* y, T* dx) {
        if (dx)
            Exec::for_each_index(N, detail::bce_gradient<T, U>{x, y, dx, static_cast<T>(1.0 / static_cast<double>(N))});
        const double sum = Exec::sum(N, detail::bce_term<T, U>{x, y});
        return static_cast<T>(sum / static_cast<double>(N));
    }

    template <std::size_t N, class T, class U>
    static T run(const T* x, const U* y, T* dx) {
        const T inv_n = static_cast<T>(1.0 / static_cast<double>(N));
        const double sum = detail::chunked_sum(N, 4 * N, [&](std::size_t begin, std::size_t end) {
            double s = 0;
            for (std::size_t i = begin; i < end; ++i) {
                const T xi = x[i], yi = static_cast<T>(y[i]);
                const T e = std::exp(-std::abs(xi));  // in (0, 1]: never overflows
                s += static_cast<double>((xi > 0 ? xi : T(0)) - xi * yi + std::log1p(e));
                if (dx) {
                    const T sigmoid = xi >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
                    dx[i] = (sigmoid - yi) * inv_n;
                }
            }
            return s;
        });
        return static_cast<T>(sum / static_cast<double>(N));
    }
};

inline constexpr binary_cross_entropy_with_logits_t binary_cross_entropy_with_logits{};

}  // namespace ctdl::loss
