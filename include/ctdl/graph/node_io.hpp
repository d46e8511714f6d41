#pragma once
// What a node's backward pass is given, as one struct of named parts.
//
//   template <class Ep> void backward(const graph::backward_io<T, Ep>& io);
//
// A graph hands each of its parts the same params, grads and accumulate, with that part's
// own in, out, dout, din and din_ep (io.part(...)).
#include "../exec/epilogue.hpp"

namespace ctdl::graph {

template <class T, class Epilogue = epilogue::none, class In = T>
struct backward_io {
    const T* params;   ///< the model's flat parameters (the node's start at Ctx::param_offset)
    T* grads;          ///< the model's flat gradients (the node writes from Ctx::grad_offset when need_dw)
    const In* in;      ///< the node's input, as its forward read it (token ids for an embedding)
    const T* out;      ///< the node's output from that forward
    const T* dout;     ///< dL/d out, already multiplied by the node's own dout_transform
    T* din;            ///< where dL/d in goes when need_dx (else unused; null at the model's input)
    Epilogue din_ep;   ///< applied to din as it is written: the derivative of the node before
    bool accumulate;   ///< add into grads instead of overwriting them

    /// The io of a part of this node: the same params, grads and accumulate.
    template <class Ep2, class In2>
    backward_io<T, Ep2, In2> part(const In2* part_in, const T* part_out, const T* part_dout, T* part_din,
                                  const Ep2& part_din_ep) const {
        return {params, grads, part_in, part_out, part_dout, part_din, part_din_ep, accumulate};
    }
};

}  // namespace ctdl::graph
