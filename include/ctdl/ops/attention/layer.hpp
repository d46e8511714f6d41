#pragma once
// Causal self-attention, as two layers:
//
// causal_attention<D, Heads>: the parameter-free core. Input [..., T, 3D], each row
//   [q | k | v] (head h at columns h·hd .. h·hd + hd of each third, hd = D / Heads: the split
//   of torch's qkv.split(D, -1) then view(..., Heads, hd)); output [..., T, D]:
//     o_h = softmax(q_h k_hᵀ / √hd + causal mask) v_h   for each head h,  y = [o_1 ... o_H]
//   One fused op each way (ops::attention_forward / attention_backward, kernels.hpp beside
//   this file; the math: math.hpp; the cpu policy's tiled kernel: cpu.hpp), keeping the
//   attention probabilities for the backward pass.
//
// causal_self_attention<D, Heads>: multi-head self-attention with a causal mask over inputs
//   [..., T, D], as in GPT: sequential<named<"qkv", linear<D, 3D>>, causal_attention<D, Heads>,
//   named<"proj", linear<D, D>>>, i.e.
//     [q | k | v] = x Wqkvᵀ + bqkv  (one fused QKV GEMM),  core,  y = att Wprojᵀ + bproj.
//   Parameters, PyTorch-named: qkv.weight [3D, D], qkv.bias [3D], proj.weight [D, D],
//   proj.bias [D], initialised as torch.nn.Linear. (GPT-2's attention is the same with
//   conv1d projections named c_attn and c_proj: models/gpt2.hpp.)
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../../core/shape.hpp"
#include "../../exec/epilogue.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "../../nn/named.hpp"
#include "../../nn/sequential.hpp"
#include "../linear/layer.hpp"
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

template <class Layer, shape_like Input>
struct attention_core_input_must_be_sequence_by_three_widths {
    static_assert(Layer::template accepts<Input>,
                  "causal_attention<D, Heads>: the input must be [..., T, 3D], each row [q | k | v]");
    using type = with_last<Input, Layer::width>;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t D, std::size_t Heads>
struct causal_attention : parameter_free {
    static_assert(attention_heads_must_divide_the_width<D, Heads>::value);
    static constexpr std::size_t width = D, heads = Heads, head_dim = D / Heads;
    static constexpr std::size_t in_features = 3 * D, out_features = D;
    static constexpr bool keeps_features = false;

    /// The shapes it takes: [..., T, 3D].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 2 && S::extents[S::rank - 1] == 3 * D;
    template <shape_like S>
    using output_shape = typename attention_core_input_must_be_sequence_by_three_widths<causal_attention, S>::type;

    template <class Ctx>
    struct node : graph::node_base<Ctx> {
        using base = graph::node_base<Ctx>;
        using typename base::T, typename base::Exec, typename base::in_shape, typename base::buffer;
        using base::rows, base::need_dx;
        using out_shape = output_shape<in_shape>;
        static constexpr std::size_t seq = in_shape::extents[in_shape::rank - 2];
        static constexpr std::size_t batch = rows / seq;
        static constexpr ops::attention_math::dims dims{batch, seq, Heads, head_dim, D};

        struct identity {
            CTDL_HD T operator()(T g) const { return g; }
        };

        void forward(const T*, const T* in, T* out, bool) {
            launch<ops::attention_forward, Exec>(dims, scale(), in, p_.data(), out);
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }

        /// A decoding step (graph/decode.hpp): each row's key and value into the KV cache,
        /// then each row's query against its sequence's keys up to its position.
        void decode(const T*, const T* in, T* out, const graph::decode_rows& d) {
            static_assert(Ctx::decode, "causal_attention: decode runs in a decoding session's context");
            launch<ops::attention_decode, Exec>(cache_dims, d.rows, scale(), in, d.seq, d.pos, k_cache_.data(),
                                                v_cache_.data(), out);
        }

        /// dqkv from datt; the epilogue of the part before it (its activation derivative),
        /// when it has one, is applied to dqkv afterwards, in place.
        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (need_dx) {
                launch<ops::attention_backward, Exec>(dims, scale(), io.in, static_cast<const T*>(p_.data()), io.dout,
                                                      io.din, scratch_.data());
                if constexpr (!std::is_same_v<Ep, epilogue::none>)
                    Exec::map_rows(rows, 3 * D, io.din, identity{}, io.din_ep, static_cast<const T*>(io.din));
            }
        }

    private:
        static T scale() { return T(1) / std::sqrt(T(head_dim)); }

        static constexpr ops::attention_cache_math::dims cache_dims{Heads, head_dim, D, seq};
        // The probabilities of a whole-window forward (none in a decoding session, which
        // keeps its KV cache instead: [batch, heads, seq, head_dim] each).
        buffer p_{Ctx::decode ? 0 : batch * Heads * seq * seq};
        [[no_unique_address]] graph::cache_if<Ctx::decode, T, Exec> k_cache_{batch * D * seq}, v_cache_{batch * D * seq};
        // scratch_: [tasks, seq, seq], what the cpu policy's backward kernel needs (dS per task).
        typename base::cache scratch_{batch * Heads * seq * seq};
    };
};

namespace detail {
template <std::size_t D, std::size_t Heads>
using self_attention_parts =
    sequential<named<"qkv", linear<D, 3 * D>>, causal_attention<D, Heads>, named<"proj", linear<D, D>>>;
}  // namespace detail

template <std::size_t D, std::size_t Heads>
struct causal_self_attention : detail::self_attention_parts<D, Heads> {
    static constexpr std::size_t width = D, heads = Heads, head_dim = D / Heads;

    /// The shapes it takes: [..., T, D].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 2 && S::extents[S::rank - 1] == D;
    template <shape_like S>
    using output_shape = typename attention_input_must_be_sequence_by_width<causal_self_attention, S>::type;
};

}  // namespace ctdl::nn
