#pragma once
// softmax over the last axis: y = exp(x - max) / Σ exp(x - max). Backward from its output:
// dx = y (dy - Σ dy y). (For classification, end the model with logits and use
// loss::cross_entropy, which fuses softmax into the loss.)
#include <cstddef>

#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl::nn {

struct softmax : parameter_free {
    template <class Ctx>
    struct node : graph::node_base<Ctx> {
        using base = graph::node_base<Ctx>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::cols, base::need_dx;
        using out_shape = in_shape;

        void forward(const T*, const T* in, T* out, bool) { launch<ops::softmax_forward, Exec>(rows, cols, in, out); }
        void decode(const T*, const T* in, T* out, const graph::decode_rows& d) {
            launch<ops::softmax_forward, Exec>(d.rows, cols, in, out);
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (need_dx)
                launch<ops::softmax_backward, Exec>(rows, cols, io.out, io.dout, io.din, io.din_ep);
        }
    };
};

}  // namespace ctdl::nn
