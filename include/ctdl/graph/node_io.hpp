#pragma once
// What a node's backward pass is given, as one struct of named parts.
//
//   template <class Ep> void backward(const graph::backward_io<T, Ep>& io);
//
// A graph hands each of its parts the same params, grads and accumulate, with that part's
// own in, out, dout, din and din_ep (io.part(...)).
//
// A backward pass may carry a gradient_hook (io.ready, null when nobody listens): a graph
// calls it after each of its parts' backward with that part's grad_offset, meaning that
// the gradients from there to the end of the model's gradient buffer are final for this
// pass. That holds because the pass runs the parts last first and a node writes gradients
// only in its own range or below it (a tied head writes its embedding's, which lies
// before it). Data-parallel training (dist/) starts reducing a bucket of gradients as soon
// as it is final, while the rest of the backward pass runs.
#include <cstddef>

#include "../exec/epilogue.hpp"

namespace ctdl::graph {

/// Told during a backward pass that gradients [grad_offset, gradient_count) are final.
/// Calls come with offsets that never grow; the model's backward ends with a call for 0.
struct gradient_hook {
    void* context = nullptr;
    void (*final_from)(void* context, std::size_t grad_offset) = nullptr;
    void operator()(std::size_t grad_offset) const { final_from(context, grad_offset); }
};

/// Whether a node's backward writes gradients outside its own range: a tied head that
/// trains its embedding says so (writes_shared_gradients), and a graph with such a part.
template <class Node>
inline constexpr bool writes_shared_gradients = [] {
    if constexpr (requires { Node::writes_shared_gradients; }) return static_cast<bool>(Node::writes_shared_gradients);
    else return false;
}();

/// Whether a node's backward is done with dout (the gradient at its output) before any
/// gradient is written: a graph whose last part writes none (that part's parameters are
/// all frozen, and it is not a tied head that trains its embedding) says so
/// (output_gradient_dies_first). The model may then keep its gradients in that dead
/// buffer (model::backward_step).
template <class Node>
inline constexpr bool output_gradient_dies_first = [] {
    if constexpr (requires { Node::output_gradient_dies_first; })
        return static_cast<bool>(Node::output_gradient_dies_first);
    else return false;
}();

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
    const gradient_hook* ready = nullptr;  ///< told when gradients become final (may be null)

    /// The io of a part of this node: the same params, grads and accumulate.
    template <class Ep2, class In2>
    backward_io<T, Ep2, In2> part(const In2* part_in, const T* part_out, const T* part_dout, T* part_din,
                                  const Ep2& part_din_ep) const {
        return {params, grads, part_in, part_out, part_dout, part_din, part_din_ep, accumulate, ready};
    }
};

}  // namespace ctdl::graph
