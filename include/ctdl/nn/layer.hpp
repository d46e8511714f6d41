#pragma once
// What a layer is.
//
// A layer is a descriptor type. It states
//   parameter_count                      how many parameters it owns (all of them),
//   trainable_parameter_count            how many of those get gradients (0 under frozen<>),
//   template <shape_like In> output_shape<In>   its output shape for an input shape (checked),
//   template <class V> visit_parameters(V&, offset)   its named parameters (PyTorch names and layouts),
//   initialize(params, seed, offset)     its initial values (as PyTorch initialises the same module),
//   template <class Ctx> struct node     the runtime part for one context (graph/context.hpp; the
//        concept ctdl::node<N, Ctx>, checked where the node is made: graph/node_of.hpp),
//        usually derived from graph::node_base<Ctx, parameter_count> (graph/node_base.hpp:
//        T, Exec, in_shape, rows, cols, need_dw, need_dx, backward_needed, buffer, cache). It has
//          out_shape                        its output shape,
//          backward_needed                  whether it has backward work (graphs: from their parts),
//          forward(params, in, out, store)  y = f(x); store: keep what backward reads,
//          dout_transform(in, out)          the epilogue the node after it applies to the gradient
//                                           it hands back (its activation derivative, or epilogue::none),
//          template <class Ep> backward(const graph::backward_io<T, Ep>& io)   (graph/node_io.hpp:
//                                           params, grads, in, out, dout, din, din_ep, accumulate),
//        and a graph's node also visit_children(f), calling for_each_node(part, f) on each of
//        its parts.
// and, optionally, what a sequential checks connections with before any input is given
// (nn/connect.hpp): in_features, out_features, keeps_features, and the shapes it takes
// (`template <shape_like S> static constexpr bool accepts`, asked by ctdl::accepts<L, S>:
// core/concepts.hpp, where ctdl::layer<L> states the descriptor's members as a concept).
// Models (model/model.hpp) own all state; a node owns only the activation cache its backward needs.
#include <concepts>
#include <cstddef>
#include <string>
#include <vector>

#include "../core/concepts.hpp"
#include "../core/shape.hpp"
#include "../exec/epilogue.hpp"
#include "../exec/hd.hpp"

namespace ctdl {

/// Every parameter a layer or graph owns.
template <class L>
inline constexpr std::size_t parameter_count = L::parameter_count;

/// The parameters of L that get gradients when L is trained (none inside frozen<>).
template <class L>
inline constexpr std::size_t trainable_parameter_count = L::trainable_parameter_count;

/// The shape L produces from input shape In (a compile error naming both if L refuses In).
template <class L, shape_like In>
using output_shape = typename L::template output_shape<In>;

namespace nn {

/// The parts a layer descriptor must have: ctdl::layer (core/concepts.hpp), by its old name.
using ctdl::layer;

/// A layer that maps each element on its own (activations); chains of them fuse into one pass.
template <class L>
concept pointwise_layer = layer<L> && L::pointwise;

/// A part that states its own name level (nn::named, and frozen<> of one): a sequential
/// then gives it no index level.
template <class L>
concept names_itself = requires { requires L::names_itself; };

/// f(nd) for a node and every node inside it (graphs visit their parts through
/// visit_children), parents before their parts. How the model reaches the nodes that draw
/// random numbers (reseed) or pack weights (pack_weights).
template <class Node, class F>
void for_each_node(Node& nd, F& f) {
    f(nd);
    if constexpr (requires { nd.visit_children(f); }) nd.visit_children(f);
}

/// Base for layers without parameters whose output has the input's shape (so it keeps the
/// input's features: nn/connect.hpp). A layer that changes the last extent says so with
/// `keeps_features = false` (and its out_features, when the type fixes it).
struct parameter_free {
    static constexpr bool keeps_features = true;
    static constexpr std::size_t parameter_count = 0;
    static constexpr std::size_t trainable_parameter_count = 0;
    template <shape_like In>
    using output_shape = In;
    template <class V>
    static constexpr void visit_parameters(V&, std::size_t) {}
    template <class T, class Seed>
    static void initialize(T*, Seed, std::size_t) {}
};

}  // namespace nn

}  // namespace ctdl
