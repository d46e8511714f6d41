#pragma once
// layer_norm<N>: y = (x - μ) / √(σ² + ε) · weight + bias over the last axis (of extent N),
// as torch.nn.LayerNorm(N) with eps = 1e-5. Parameters: weight [N] (ones), bias [N] (zeros).
// Keeps μ and 1/√(σ² + ε) per row for its backward (the math: math.hpp beside this file).
#include <cstddef>
#include <type_traits>

#include "../../core/init.hpp"
#include "../../core/shape.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl {

/// By the layer's own predicate (`accepts`, also asked by ctdl::accepts: core/concepts.hpp).
template <class Layer, shape_like Input>
struct layer_norm_features_must_match {
    static_assert(Layer::template accepts<Input>,
                  "layer_norm<N>: the input's last extent must be N");
    using type = Input;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t N>
struct layer_norm {
    static constexpr std::size_t features = N, in_features = N, out_features = N;
    static constexpr std::size_t parameter_count = 2 * N;
    static constexpr std::size_t trainable_parameter_count = parameter_count;
    static constexpr double eps = 1e-5;

    /// The shapes it takes: [..., N].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 1 && S::extents[S::rank - 1] == N;
    template <shape_like S>
    using output_shape = typename layer_norm_features_must_match<layer_norm, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.param("weight", offset, {N});
        v.param("bias", offset + N, {N});
    }
    template <class T, class Seed>
    static void initialize(T* params, Seed, std::size_t offset) {
        for (std::size_t i = 0; i < N; ++i) {
            params[offset + i] = T(1);
            params[offset + N + i] = T(0);
        }
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::need_dw, base::need_dx;
        using out_shape = output_shape<in_shape>;

        void forward(const T* params, const T* in, T* out, bool store) {
            const T* w = params + Ctx::param_offset;
            // Kept for backward only (no cache, no backward: data() is null).
            T* mean = store ? mean_.data() : nullptr;
            T* rstd = store ? rstd_.data() : nullptr;
            launch<ops::layer_norm_forward, Exec>(rows, N, in, w, w + N, out, mean, rstd, T(eps));
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
            const T* w = params + Ctx::param_offset;
            launch<ops::layer_norm_forward, Exec>(d.rows, N, in, w, w + N, out, static_cast<T*>(nullptr),
                                                  static_cast<T*>(nullptr), T(eps));
        }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            T* dw = nullptr;
            if constexpr (need_dw) dw = io.grads + Ctx::grad_offset;
            launch<ops::layer_norm_backward, Exec>(rows, N, io.in, io.params + Ctx::param_offset, mean_.data(),
                                                   rstd_.data(), io.dout, need_dx ? io.din : nullptr, dw,
                                                   dw ? dw + N : nullptr, io.accumulate, io.din_ep);
        }

    private:
        [[no_unique_address]] typename base::cache mean_{rows}, rstd_{rows};
    };
};

}  // namespace ctdl::nn
