#pragma once
// Activations: pointwise layers. Each states its function f(x) and derivative f'(x);
// those whose derivative is a function of the output alone (relu, tanh, sigmoid) say so
// with df_from_output(y), so that a fused linear + activation keeps only its output.
//
// Adjacent pointwise layers are fused into one pass (graph/fusion.hpp), and a linear
// followed by pointwise layers becomes one GEMM with the chain in its epilogue.
#include <cmath>
#include <numbers>

#include "../core/math.hpp"
#include "../exec/hd.hpp"
#include "layer.hpp"

namespace ctdl::nn {

/// relu(x) = max(x, 0); relu'(x) = [x > 0]
struct relu : parameter_free {
    static constexpr bool pointwise = true;
    static constexpr bool derivative_from_output = true;
    template <class T>
    CTDL_HD static T f(T x) { return x > T(0) ? x : T(0); }
    template <class T>
    CTDL_HD static T df(T x) { return x > T(0) ? T(1) : T(0); }
    template <class T>
    CTDL_HD static T df_from_output(T y) { return y > T(0) ? T(1) : T(0); }
};

/// tanh(x); tanh'(x) = 1 - tanh(x)^2
struct tanh : parameter_free {
    static constexpr bool pointwise = true;
    static constexpr bool derivative_from_output = true;
    template <class T>
    CTDL_HD static T f(T x) { return math::tanh(x); }
    template <class T>
    CTDL_HD static T df(T x) { return df_from_output(math::tanh(x)); }
    template <class T>
    CTDL_HD static T df_from_output(T y) { return T(1) - y * y; }
};

/// sigmoid(x) = 1 / (1 + e^-x); sigmoid'(x) = s (1 - s)
struct sigmoid : parameter_free {
    static constexpr bool pointwise = true;
    static constexpr bool derivative_from_output = true;
    template <class T>
    CTDL_HD static T f(T x) { return T(1) / (T(1) + math::exp(-x)); }
    template <class T>
    CTDL_HD static T df(T x) { return df_from_output(f(x)); }
    template <class T>
    CTDL_HD static T df_from_output(T y) { return y * (T(1) - y); }
};

enum class gelu_approximation { none, tanh };

/// gelu(x) = x Φ(x) (exact, erf), or PyTorch's approximate='tanh':
///   0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
template <gelu_approximation A>
struct basic_gelu : parameter_free {
    static constexpr bool pointwise = true;
    static constexpr bool derivative_from_output = false;
    template <class T>
    CTDL_HD static T f(T x) {
        if constexpr (A == gelu_approximation::none) {
            return T(0.5) * x * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
        } else {  // 0.5 (1 + tanh u) = sigmoid(2u): one exp and one division
            const T u2 = T(2 * std::numbers::sqrt2 * std::numbers::inv_sqrtpi) * (x + T(0.044715) * x * x * x);
            return x / (T(1) + math::exp(-u2));
        }
    }
    /// f(x), with df(x) in d: the two share their erf, or their exponential and 1 + e,
    /// which is most of each (a training forward that keeps the derivative for the backward
    /// pass computes both). Bitwise f(x) and df(x): the same operations in the same order.
    template <class T>
    CTDL_HD static T f_df(T x, T& d) {
        if constexpr (A == gelu_approximation::none) {
            const T e = std::erf(x * T(std::numbers::sqrt2 / 2));
            const T cdf = T(0.5) * (T(1) + e);
            const T pdf = std::exp(T(-0.5) * x * x) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
            d = cdf + x * pdf;
            return T(0.5) * x * (T(1) + e);
        } else {
            const T k2 = T(2 * std::numbers::sqrt2 * std::numbers::inv_sqrtpi);
            const T den = T(1) + math::exp(-(k2 * (x + T(0.044715) * x * x * x)));
            const T s = T(1) / den;
            d = s + x * s * (T(1) - s) * k2 * (T(1) + T(3 * 0.044715) * x * x);
            return x / den;
        }
    }
    template <class T>
    CTDL_HD static T df(T x) {
        if constexpr (A == gelu_approximation::none) {
            // Φ(x) + x φ(x)
            const T cdf = T(0.5) * (T(1) + std::erf(x * T(std::numbers::sqrt2 / 2)));
            const T pdf = std::exp(T(-0.5) * x * x) * T(std::numbers::inv_sqrtpi / std::numbers::sqrt2);
            return cdf + x * pdf;
        } else {
            // With s = sigmoid(2u) = 0.5 (1 + tanh u): s + x · 2 s (1 - s) · u'(x).
            const T k2 = T(2 * std::numbers::sqrt2 * std::numbers::inv_sqrtpi);
            const T s = T(1) / (T(1) + math::exp(-k2 * (x + T(0.044715) * x * x * x)));
            return s + x * s * (T(1) - s) * k2 * (T(1) + T(3 * 0.044715) * x * x);
        }
    }
};

/// The exact (erf) GELU, as torch.nn.GELU(). (Named types, so diagnostics print them short.)
struct gelu_exact : basic_gelu<gelu_approximation::none> {};
/// The tanh-approximated GELU, as torch.nn.GELU(approximate='tanh').
struct gelu_tanh : basic_gelu<gelu_approximation::tanh> {};
/// torch.nn.GELU's default: the exact form.
using gelu = gelu_exact;

}  // namespace ctdl::nn
