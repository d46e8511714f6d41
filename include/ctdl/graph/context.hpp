#pragma once
// The compile-time context in which a layer becomes a node: its input shape, element
// type and policy, where its parameters and gradients sit in the model's flat buffers,
// and which gradients the backward pass must produce.
//
//   need_dw: the layer's own parameters get gradients (it has some and is not frozen);
//   need_dx: a gradient must flow out of the layer's input, because some trainable
//            parameter lies before it. The model input itself never needs one.
// A node with neither has no backward work and keeps no activation cache.
//   decode:  the node is part of a decoding session (graph/decode.hpp): it runs decode()
//            over a run-time number of token rows, at most decode_capacity at a time, and
//            keeps what decoding needs (a KV cache for the input shape's sequences) instead
//            of what a whole-shape forward needs; its row buffers hold decode_capacity rows.
//   packed_type: the elements in which a node keeps a weight packed for its policy's
//            kernels (ops/linear: T, or ctdl::bf16 in the nodes of a bf16 decoding session,
//            infer::bf16_decoder).
#include <cstddef>

#include "../core/shape.hpp"

namespace ctdl::graph {

template <shape_like In, class T, class Exec, std::size_t ParamOffset, std::size_t GradOffset, bool Frozen,
          bool NeedDx, class Input = T, std::size_t DecodeRows = 0, class Packed = T>
struct context {
    using in_shape = In;
    using value_type = T;
    /// The element type of the input: T, or an integer type for token ids (embeddings).
    using input_type = Input;
    using exec_type = Exec;
    static constexpr std::size_t param_offset = ParamOffset;
    static constexpr std::size_t grad_offset = GradOffset;
    static constexpr bool frozen = Frozen;
    static constexpr bool need_dx = NeedDx;
    static constexpr bool decode = DecodeRows > 0;
    static constexpr std::size_t decode_capacity = DecodeRows;
    using packed_type = Packed;

    /// The same context for a part of this layer: another input shape and offsets.
    template <shape_like In2, std::size_t P2, std::size_t G2, bool NeedDx2, bool Frozen2 = Frozen,
              class Input2 = Input>
    using child = context<In2, T, Exec, P2, G2, Frozen2, NeedDx2, Input2, DecodeRows, Packed>;
};

}  // namespace ctdl::graph
