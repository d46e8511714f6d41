#pragma once
// softmax over the last axis: y = exp(x - max) / Σ exp(x - max). Backward from its output:
// dx = y (dy - Σ dy y). (For classification, end the model with logits and use
// loss::cross_entropy, which fuses softmax into the loss.)
#include <cstddef>

#include "../../exec/kernel.hpp"
#include "../../nn/layer.hpp"
#include "kernels.hpp"

namespace ctdl::nn {

struct softmax : parameter_free {
    template <class Ctx>
    struct node {
        using T = typename Ctx::value_type;
        using Exec = typename Ctx::exec_type;
        using in_shape = typename Ctx::in_shape;
        using out_shape = in_shape;
        static constexpr std::size_t rows = leading_size<in_shape>, cols = last_extent<in_shape>;
        static constexpr bool backward_needed = Ctx::need_dx;

        void forward(const T*, const T* in, T* out, bool) { launch<ops::softmax_forward, Exec>(rows, cols, in, out); }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }
        template <class Ep>
        void backward(const T*, T*, const T*, const T* out, const T* dout, T* din, const Ep& din_ep, bool) {
            if constexpr (Ctx::need_dx) launch<ops::softmax_backward, Exec>(rows, cols, out, dout, din, din_ep);
        }
    };
};

}  // namespace ctdl::nn
