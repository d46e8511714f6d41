#pragma once
// rms_norm<N, Eps>: y = x / √(mean(x²) + ε) · weight over the last axis (of extent N), as
// torch.nn.RMSNorm(N, eps=ε). Parameter: weight [N] (ones). ε is part of the type, as a
// std::ratio (a floating-point template argument would be shorter, but clang 14 has none):
// rms_norm<N> is ε = 1e-6, rms_norm<N, std::ratio<1, 100000>> is 1e-5, and torch's own
// default (eps=None: the dtype's machine epsilon, 2⁻²³ for float) is
// rms_norm<N, std::ratio<1, 8388608>>. Keeps 1/√(mean(x²) + ε) per
// row for its backward (the math: math.hpp beside this file).
#include <cstddef>
#include <ratio>
#include <type_traits>

#include "../../core/shape.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl {

/// By the layer's own predicate (`accepts`, also asked by ctdl::accepts: core/concepts.hpp).
template <class Layer, shape_like Input>
struct rms_norm_features_must_match {
    static_assert(Layer::template accepts<Input>,
                  "rms_norm<N>: the input's last extent must be N");
    using type = Input;
};

/// Eps: a std::ratio (num / den) greater than zero.
template <class Eps>
struct rms_norm_eps_must_be_a_positive_ratio {
    static constexpr bool value = [] {
        if constexpr (requires { Eps::num; Eps::den; }) return Eps::num > 0 && Eps::den > 0;
        else return false;
    }();
    static_assert(value, "rms_norm<N, Eps>: Eps must be a std::ratio greater than zero (e.g. std::ratio<1, 100000>)");
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t N, class Eps = std::ratio<1, 1000000>>
struct rms_norm {
    static_assert(sizeof(rms_norm_eps_must_be_a_positive_ratio<Eps>) > 0);  // says its sentence itself
    static constexpr std::size_t features = N, in_features = N, out_features = N;
    static constexpr std::size_t parameter_count = N;
    static constexpr std::size_t trainable_parameter_count = parameter_count;
    static constexpr double eps = [] {
        if constexpr (rms_norm_eps_must_be_a_positive_ratio<Eps>::value) return double(Eps::num) / double(Eps::den);
        else return 1.0;  // refused above
    }();

    /// The shapes it takes: [..., N].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 1 && S::extents[S::rank - 1] == N;
    template <shape_like S>
    using output_shape = typename rms_norm_features_must_match<rms_norm, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.param("weight", offset, {N});
    }
    template <class T, class Seed>
    static void initialize(T* params, Seed, std::size_t offset) {
        for (std::size_t i = 0; i < N; ++i) params[offset + i] = T(1);
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::need_dw, base::need_dx;
        using out_shape = output_shape<in_shape>;

        void forward(const T* params, const T* in, T* out, bool store) {
            T* rstd = store ? rstd_.data() : nullptr;  // null without a backward pass
            launch<ops::rms_norm_forward, Exec>(rows, N, in, params + Ctx::param_offset, out, rstd, T(eps));
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
            launch<ops::rms_norm_forward, Exec>(d.rows, N, in, params + Ctx::param_offset, out,
                                                static_cast<T*>(nullptr), T(eps));
        }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            T* dw = nullptr;
            if constexpr (need_dw) dw = io.grads + Ctx::grad_offset;
            launch<ops::rms_norm_backward, Exec>(rows, N, io.in, io.params + Ctx::param_offset,
                                                 static_cast<const T*>(rstd_.data()), io.dout,
                                                 need_dx ? io.din : nullptr, dw, io.accumulate, io.din_ep);
        }

    private:
        [[no_unique_address]] typename base::cache rstd_{rows};
    };
};

}  // namespace ctdl::nn
