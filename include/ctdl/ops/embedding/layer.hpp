#pragma once
// Token and position embeddings.
//
// embedding<Vocab, D, Tied>: integer token ids [..., T] -> vectors [..., T, D]; y[r] = W[id[r]].
//   Parameter weight [Vocab, D], initialised N(0, 1) as torch.nn.Embedding. Backward is a
//   scatter-add dW[id[r]] += dy[r], done per column of W so that it is deterministic (the
//   ops: kernels.hpp beside this file). Tied: W is also read by a later layer
//   (nn::tied_head, the LM head of GPT-2), whose backward runs first and writes its part of
//   dW; this one's scatter then always adds to it, so dW is the sum of both uses.
//   An id outside [0, Vocab) is bad data: ctdl::error naming it (checked on every forward).
// position_embedding<MaxT, D>: y[b, t] = x[b, t] + P[t] for t < T <= MaxT. Parameter weight
//   [MaxT, D], N(0, 1). Backward: dP[t] = Σ_b dy[b, t]; dx = dy.
#include <concepts>
#include <cstddef>
#include <string>

#include "../../core/error.hpp"
#include "../../core/init.hpp"
#include "../../core/random.hpp"
#include "../../core/shape.hpp"
#include "../../exec/aligned_buffer.hpp"
#include "../../exec/epilogue.hpp"
#include "../../exec/hd.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl {

template <class Layer, class Input>
struct embedding_input_must_be_token_ids {
    static_assert(std::integral<Input>, "embedding: the input must be integer token ids (the model's first layer)");
    static constexpr bool value = true;
};

/// The second sentence by the layer's own predicate (`accepts`, also asked by ctdl::accepts:
/// core/concepts.hpp), once the first holds.
template <class Layer, shape_like Input>
struct position_embedding_sequence_must_fit {
    static constexpr bool sequence_by_width = Input::rank >= 2 && Input::extents[Input::rank - 1] == Layer::width;
    static_assert(sequence_by_width, "position_embedding<MaxT, D>: the input must be [..., T, D]");
    static_assert(!sequence_by_width || Layer::template accepts<Input>,
                  "position_embedding<MaxT, D>: the sequence is longer than MaxT");
    using type = Input;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t Vocab, std::size_t D, bool Tied = false>
struct embedding {
    static constexpr std::size_t vocab = Vocab, width = D, out_features = D;
    static constexpr bool tied = Tied;
    static constexpr std::size_t parameter_count = Vocab * D;
    static constexpr std::size_t trainable_parameter_count = parameter_count;

    /// Takes any shape of token ids (that they are integers is checked by its node).
    template <shape_like S>
    static constexpr bool accepts = true;
    template <shape_like S>
    using output_shape = append<S, D>;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.param("weight", offset, {Vocab, D});
    }
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        init::normal(tensor_view<T, shape<Vocab, D>>(params + offset), random_stream(s, offset), 0.0, 1.0);
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::need_dw;
        using Id = typename Ctx::input_type;
        using out_shape = output_shape<in_shape>;
        static_assert(embedding_input_must_be_token_ids<embedding, Id>::value);
        /// One output row per token id.
        static constexpr std::size_t tokens = in_shape::size;

        void forward(const T* params, const Id* in, T* out, bool) { gather(params, in, out, tokens); }
        void decode(const T* params, const Id* in, T* out, const graph::decode_rows& d) {
            gather(params, in, out, d.rows);
        }
        /// Rows of the table for n token ids; ctdl::error naming the first id outside it.
        static void gather(const T* params, const Id* in, T* out, std::size_t n) {
            if (launch<ops::embedding_gather, Exec>(n, D, Vocab, in, params + Ctx::param_offset, out) != 0) {
                // Bad data from outside: find the first bad id for the message.
                aligned_buffer<Id> host(n);
                Exec::copy_to_host(in, host.data(), n);
                for (std::size_t r = 0; r < n; ++r)
                    if (ops::embedding_detail::outside(host.data()[r], Vocab))
                        throw error("embedding: token id " + std::to_string(host.data()[r]) + " at position " +
                                    std::to_string(r) + " is outside the vocabulary [0, " + std::to_string(Vocab) +
                                    ")");
            }
        }
        epilogue::none dout_transform(const Id*, const T*) const { return {}; }

        /// dW only: no gradient flows into token ids.
        template <class Ep>
        void backward(const graph::backward_io<T, Ep, Id>& io) {
            if constexpr (need_dw)
                launch<ops::embedding_scatter, Exec>(tokens, D, Vocab, io.in, io.dout, io.grads + Ctx::grad_offset,
                                                     Tied || io.accumulate);
        }
    };
};

template <std::size_t MaxT, std::size_t D>
struct position_embedding {
    static constexpr std::size_t max_length = MaxT, width = D;
    static constexpr std::size_t in_features = D, out_features = D;
    static constexpr std::size_t parameter_count = MaxT * D;
    static constexpr std::size_t trainable_parameter_count = parameter_count;

    /// The shapes it takes: [..., T, D] with T <= MaxT.
    template <shape_like S>
    static constexpr bool accepts =
        S::rank >= 2 && S::extents[S::rank - 1] == D && S::extents[S::rank - 2] <= MaxT;
    template <shape_like S>
    using output_shape = typename position_embedding_sequence_must_fit<position_embedding, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.param("weight", offset, {MaxT, D});
    }
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        init::normal(tensor_view<T, shape<MaxT, D>>(params + offset), random_stream(s, offset), 0.0, 1.0);
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::need_dw, base::need_dx;
        using out_shape = output_shape<in_shape>;
        static constexpr std::size_t seq = in_shape::extents[in_shape::rank - 2];
        static constexpr std::size_t batch = rows / seq;

        struct identity {
            CTDL_HD T operator()(T g) const { return g; }
        };

        void forward(const T* params, const T* in, T* out, bool) {
            launch<ops::position_add, Exec>(batch, seq, D, in, params + Ctx::param_offset, out);
        }
        /// Row r gets the position embedding of its own position, d.pos[r].
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
            launch<ops::position_add_at, Exec>(d.rows, D, in, params + Ctx::param_offset, d.pos, out);
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (need_dw)
                launch<ops::position_sum, Exec>(batch, seq, MaxT, D, io.dout, io.grads + Ctx::grad_offset, io.accumulate);
            if constexpr (need_dx) Exec::map_rows(rows, D, io.din, identity{}, io.din_ep, io.dout);
        }
    };
};

}  // namespace ctdl::nn
