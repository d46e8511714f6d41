#pragma once
// rms_norm<N, Eps>: y = x / √(mean(x²) + ε) · weight over the last axis (of extent N), as
// torch.nn.RMSNorm(N, eps=Eps). Parameter: weight [N] (ones). ε is part of the type
// (default 1e-6; torch's own default, eps=None, is the dtype's machine epsilon: write
// rms_norm<N, 1.1920928955078125e-07> to match it for float). Keeps 1/√(mean(x²) + ε) per
// row for its backward (the math: math.hpp beside this file).
#include <cstddef>
#include <type_traits>

#include "../../core/shape.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl {

template <class Layer, shape_like Input>
struct rms_norm_features_must_match {
    static_assert(Input::rank >= 1 && Input::extents[Input::rank - 1] == Layer::features,
                  "rms_norm<N>: the input's last extent must be N");
    using type = Input;
};

template <double Eps>
struct rms_norm_eps_must_be_positive {
    static_assert(Eps > 0, "rms_norm<N, Eps>: eps must be > 0");
    static constexpr bool value = true;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t N, double Eps = 1e-6>
struct rms_norm {
    static_assert(rms_norm_eps_must_be_positive<Eps>::value);
    static constexpr std::size_t features = N, in_features = N, out_features = N;
    static constexpr std::size_t parameter_count = N;
    static constexpr std::size_t trainable_parameter_count = parameter_count;
    static constexpr double eps = Eps;

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
