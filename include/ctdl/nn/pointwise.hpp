#pragma once
// chain<P...>: consecutive pointwise layers fused into one function, applied in one pass.
//
//   forward   y = P_n(... P_1(x))
//   backward  dx = dy · Π_k P_k'(x_k)   with x_k recomputed from x in the same pass,
//             or dy · P'(y) when the chain is one activation whose derivative is a
//             function of its output (relu, tanh, sigmoid).
// sequential<> builds chains from runs of pointwise layers; a linear before a run takes
// the chain into its GEMM epilogue (nn/linear.hpp).
#include <cstddef>

#include "../exec/epilogue.hpp"
#include "../exec/hd.hpp"
#include "../exec/prefetch.hpp"
#include "../graph/node_base.hpp"
#include "layer.hpp"

namespace ctdl::nn {

template <class... P>
struct chain {
    static constexpr std::size_t length = sizeof...(P);
    static constexpr bool derivative_from_output = [] {
        if constexpr (sizeof...(P) == 1) return (P::derivative_from_output && ...);
        else return false;
    }();

    template <class T>
    CTDL_HD static T apply(T x) {
        ((x = P::f(x)), ...);
        return x;
    }
    /// d chain / dx at x.
    template <class T>
    CTDL_HD static T derivative(T x) {
        T d = T(1);
        ((d *= P::df(x), x = P::f(x)), ...);
        return d;
    }
    /// apply(x), with derivative(x) in d, bitwise; a layer that states f_df (f and df
    /// sharing their work: the GELUs) computes both in one.
    template <class T>
    CTDL_HD static T apply_with_derivative(T x, T& d) {
        d = T(1);
        ((x = step<P>(x, d)), ...);
        return x;
    }
    /// d chain / dx, from the chain's output y (only when derivative_from_output).
    template <class T>
    CTDL_HD static T derivative_at_output(T y) {
        return (P::df_from_output(y) * ...);
    }

private:
    template <class Q, class T>
    CTDL_HD static T step(T x, T& d) {
        if constexpr (requires(T& r) { Q::f_df(x, r); }) {
            T dq;
            const T y = Q::f_df(x, dq);
            d *= dq;
            return y;
        } else {
            d *= Q::df(x);
            return Q::f(x);
        }
    }
};

template <class C>
inline constexpr bool is_empty_chain = C::length == 0;

namespace detail {

/// Epilogue: c *= d[row, col], the chain's derivative that the forward pass kept
/// (ops::linear_math::forward_epilogue).
template <class T>
struct kept_derivative_epilogue {
    const T* d;
    std::size_t ld;
    CTDL_HD void operator()(std::size_t row, std::size_t col0, T* c, std::size_t len) const {
        const T* a = d + row * ld + col0;
        prefetch_span(a + epilogue_prefetch_rows * ld, len);  // the next tile's (exec/prefetch.hpp)
        for (std::size_t j = 0; j < len; ++j) c[j] *= a[j];
    }
};

/// Epilogue: c *= chain'(at[row, col]), with `at` either the chain's input or its output.
template <class Chain, class T, bool FromOutput>
struct chain_derivative_epilogue {
    const T* at;
    std::size_t ld;
    CTDL_HD void operator()(std::size_t row, std::size_t col0, T* c, std::size_t len) const {
        const T* a = at + row * ld + col0;
        prefetch_span(a + epilogue_prefetch_rows * ld, len);  // the next tile's (exec/prefetch.hpp)
        for (std::size_t j = 0; j < len; ++j) {
            if constexpr (FromOutput) c[j] *= Chain::derivative_at_output(a[j]);
            else c[j] *= Chain::derivative(a[j]);
        }
    }
};

}  // namespace detail

/// The node of a standalone chain (one that does not follow a linear layer).
template <class Chain, class Ctx>
struct chain_node : graph::node_base<Ctx> {
    using base = graph::node_base<Ctx>;
    using typename base::T, typename base::Exec, typename base::in_shape;
    using base::rows, base::cols, base::need_dx;
    using out_shape = in_shape;

    void forward(const T*, const T* in, T* out, bool) {
        Exec::map_rows(rows, cols, out, [] CTDL_HD (T x) { return Chain::apply(x); }, epilogue::none{}, in);
    }
    /// dx = dy · chain'(x), in one pass, then the upstream epilogue.
    template <class Ep>
    void backward(const graph::backward_io<T, Ep>& io) {
        if constexpr (need_dx) {
            if constexpr (Chain::derivative_from_output)
                Exec::map_rows(rows, cols, io.din, [] CTDL_HD (T dy, T y) { return dy * Chain::derivative_at_output(y); },
                               io.din_ep, io.dout, io.out);
            else
                Exec::map_rows(rows, cols, io.din, [] CTDL_HD (T dy, T x) { return dy * Chain::derivative(x); },
                               io.din_ep, io.dout, io.in);
        }
    }
    epilogue::none dout_transform(const T*, const T*) const { return {}; }
    void decode(const T*, const T* in, T* out, const graph::decode_rows& d) {
        Exec::map_rows(d.rows, cols, out, [] CTDL_HD (T x) { return Chain::apply(x); }, epilogue::none{}, in);
    }
};

}  // namespace ctdl::nn
