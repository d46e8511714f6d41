#pragma once
// causal_self_attention<D, Heads>: multi-head self-attention with a causal mask over inputs
// [..., T, D], as in GPT:
//   [q | k | v] = x Wqkvᵀ + bqkv                  (one fused QKV GEMM)
//   o_h = softmax(q_h k_hᵀ / √hd + causal mask) v_h   for each head h (hd = D / Heads)
//   y = [o_1 ... o_H] Wprojᵀ + bproj
// Parameters, PyTorch-named: qkv.weight [3D, D], qkv.bias [3D], proj.weight [D, D],
// proj.bias [D], initialised as torch.nn.Linear. The per-head math is one fused op
// (ops::attention_forward / attention_backward, kernels.hpp beside this file; the math:
// math.hpp; the cpu policy's tiled kernel: cpu.hpp) keeping the attention probabilities for
// the backward pass.
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../../core/init.hpp"
#include "../../core/random.hpp"
#include "../../core/shape.hpp"
#include "../../exec/epilogue.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "decode.hpp"
#include "cpu.hpp"  // kernel<ops::attention_*, cpu>: visible wherever launch instantiates it
#include "kernels.hpp"

namespace ctdl {

/// The class name carries the width and the head count.
template <std::size_t D, std::size_t Heads>
struct attention_heads_must_divide_the_width {
    static_assert(Heads > 0 && D % Heads == 0,
                  "causal_self_attention<D, Heads>: the head count must divide the model width D");
    static constexpr bool value = true;
};

/// By the layer's own predicate (`accepts`, also asked by ctdl::accepts: core/concepts.hpp).
template <class Layer, shape_like Input>
struct attention_input_must_be_sequence_by_width {
    static_assert(Layer::template accepts<Input>,
                  "causal_self_attention<D, Heads>: the input must be [..., T, D]");
    using type = Input;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t D, std::size_t Heads>
struct causal_self_attention {
    static_assert(attention_heads_must_divide_the_width<D, Heads>::value);
    static constexpr std::size_t width = D, heads = Heads, head_dim = D / Heads;
    static constexpr std::size_t in_features = D, out_features = D;
    static constexpr std::size_t parameter_count = 3 * D * D + 3 * D + D * D + D;
    static constexpr std::size_t trainable_parameter_count = parameter_count;

    /// The shapes it takes: [..., T, D].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 2 && S::extents[S::rank - 1] == D;
    template <shape_like S>
    using output_shape = typename attention_input_must_be_sequence_by_width<causal_self_attention, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.param("qkv.weight", offset, {3 * D, D});
        v.param("qkv.bias", offset + 3 * D * D, {3 * D});
        v.param("proj.weight", offset + 3 * D * D + 3 * D, {D, D});
        v.param("proj.bias", offset + 4 * D * D + 3 * D, {D});
    }
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        T* p = params + offset;
        init::linear_weight(tensor_view<T, shape<3 * D, D>>(p), random_stream(s, offset), D);
        init::linear_bias(tensor_view<T, shape<3 * D>>(p + 3 * D * D), random_stream(s, offset + 3 * D * D), D);
        const std::size_t o = 3 * D * D + 3 * D;
        init::linear_weight(tensor_view<T, shape<D, D>>(p + o), random_stream(s, offset + o), D);
        init::linear_bias(tensor_view<T, shape<D>>(p + o + D * D), random_stream(s, offset + o + D * D), D);
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape, typename base::buffer;
        using base::rows, base::need_dw, base::need_dx;
        using out_shape = output_shape<in_shape>;
        static constexpr std::size_t seq = in_shape::extents[in_shape::rank - 2];
        static constexpr std::size_t batch = rows / seq;
        static constexpr ops::attention_math::dims dims{batch, seq, Heads, head_dim, D};

        void forward(const T* params, const T* in, T* out, bool) {
            const T* w = params + Ctx::param_offset;
            Exec::template gemm<trans::n, trans::t>(rows, 3 * D, D, in, D, w, D, qkv_.data(), 3 * D, false,
                                                    epilogue::bias<T>{w + 3 * D * D});
            launch<ops::attention_forward, Exec>(dims, scale(), static_cast<const T*>(qkv_.data()), p_.data(),
                                                 att_.data());
            const T* wp = w + 3 * D * D + 3 * D;
            Exec::template gemm<trans::n, trans::t>(rows, D, D, static_cast<const T*>(att_.data()), D, wp, D, out, D,
                                                    false, epilogue::bias<T>{wp + D * D});
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }

        /// A decoding step: the projections over d.rows, attention through the KV cache.
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
            static_assert(Ctx::decode, "causal_self_attention: decode runs in a decoding session's context");
            const T* w = params + Ctx::param_offset;
            Exec::template gemm<trans::n, trans::t>(d.rows, 3 * D, D, in, D, w, D, qkv_.data(), 3 * D, false,
                                                    epilogue::bias<T>{w + 3 * D * D});
            launch<ops::attention_decode, Exec>(cache_dims, d.rows, scale(), static_cast<const T*>(qkv_.data()),
                                                d.seq, d.pos, k_cache_.data(), v_cache_.data(), att_.data());
            const T* wp = w + 3 * D * D + 3 * D;
            Exec::template gemm<trans::n, trans::t>(d.rows, D, D, static_cast<const T*>(att_.data()), D, wp, D, out,
                                                    D, false, epilogue::bias<T>{wp + D * D});
        }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            const T* w = io.params + Ctx::param_offset;
            const T* wp = w + 3 * D * D + 3 * D;
            const T* dout = io.dout;
            const bool accumulate = io.accumulate;
            if constexpr (need_dw) {
                T* gwp = io.grads + Ctx::grad_offset + 3 * D * D + 3 * D;
                Exec::template gemm<trans::t, trans::n>(D, D, rows, dout, D, static_cast<const T*>(att_.data()), D,
                                                        gwp, D, accumulate);
                Exec::sum_cols(rows, D, dout, gwp + D * D, accumulate);
            }
            Exec::template gemm<trans::n, trans::n>(rows, D, D, dout, D, wp, D, datt_.data(), D);
            launch<ops::attention_backward, Exec>(dims, scale(), static_cast<const T*>(qkv_.data()),
                                                  static_cast<const T*>(p_.data()),
                                                  static_cast<const T*>(datt_.data()), dqkv_.data(), scratch_.data());
            if constexpr (need_dw) {
                T* gw = io.grads + Ctx::grad_offset;
                Exec::template gemm<trans::t, trans::n>(3 * D, D, rows, static_cast<const T*>(dqkv_.data()), 3 * D,
                                                        io.in, D, gw, D, accumulate);
                Exec::sum_cols(rows, 3 * D, static_cast<const T*>(dqkv_.data()), gw + 3 * D * D, accumulate);
            }
            if constexpr (need_dx)
                Exec::template gemm<trans::n, trans::n>(rows, D, 3 * D, static_cast<const T*>(dqkv_.data()), 3 * D, w,
                                                        D, io.din, D, false, io.din_ep);
        }

    private:
        static T scale() { return T(1) / std::sqrt(T(head_dim)); }

        static constexpr ops::attention_cache_math::dims cache_dims{Heads, head_dim, D, seq};
        buffer qkv_{rows * 3 * D}, p_{Ctx::decode ? 0 : batch * Heads * seq * seq}, att_{rows * D};
        // The KV cache of a decoding session: [batch, heads, seq, head_dim] each.
        [[no_unique_address]] graph::cache_if<Ctx::decode, T, Exec> k_cache_{batch * D * seq}, v_cache_{batch * D * seq};
        // scratch_: [tasks, seq, seq], what the cpu policy's backward kernel needs (dS per task).
        typename base::cache datt_{rows * D}, dqkv_{rows * 3 * D}, scratch_{batch * Heads * seq * seq};
    };
};

}  // namespace ctdl::nn
