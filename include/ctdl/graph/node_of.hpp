#pragma once
// Where every node is made: graph::node_of<L, Ctx[, Chain]> is L's node<Ctx> (with a fused
// pointwise chain, for layers that take one), checked against ctdl::node
// (core/concepts.hpp) and against L's own output_shape.
//
// A layer whose node is missing or wrong gets one error, from a class named after the
// mistake with the layer in its name (layer_node_must_be_a_ctdl_node<L, Ctx>), and an inert
// stand-in node in its place, so the graph around it compiles without a second error.
#include <concepts>
#include <type_traits>

#include "../core/concepts.hpp"
#include "../core/shape.hpp"
#include "../exec/epilogue.hpp"
#include "node_base.hpp"
#include "node_io.hpp"

namespace ctdl::graph {

namespace detail {

/// Whether L::node<Ctx> (Chain void) or L::node<Ctx, Chain> names a type. (Two spellings:
/// nvcc refuses a pack expanded into node's fixed parameters.)
template <class L, class Ctx, class Chain>
constexpr bool names_node() {
    if constexpr (std::is_void_v<Chain>) return requires { typename L::template node<Ctx>; };
    else return requires { typename L::template node<Ctx, Chain>; };
}

template <class L, class Ctx, class Chain, bool Named = names_node<L, Ctx, Chain>()>
struct raw_node {
    using type = void;
};
template <class L, class Ctx>
struct raw_node<L, Ctx, void, true> {
    using type = typename L::template node<Ctx>;
};
template <class L, class Ctx, class Chain>
    requires(!std::is_void_v<Chain>)
struct raw_node<L, Ctx, Chain, true> {
    using type = typename L::template node<Ctx, Chain>;
};

template <class N, class L, class Ctx>
constexpr bool is_node_of() {
    if constexpr (std::is_void_v<N>) return false;
    else if constexpr (!ctdl::node<N, Ctx>) return false;
    else return std::same_as<typename N::out_shape, typename L::template output_shape<typename Ctx::in_shape>>;
}

/// What stands in for a node that is not one: the layer's shapes, no work.
template <class L, class Ctx>
struct inert_node : node_base<Ctx, L::parameter_count> {
    using T = typename Ctx::value_type;
    using In = typename Ctx::input_type;
    using out_shape = typename L::template output_shape<typename Ctx::in_shape>;
    void forward(const T*, const In*, T*, bool) {}
    epilogue::none dout_transform(const In*, const T*) const { return {}; }
    template <class Ep>
    void backward(const backward_io<T, Ep, In>&) {}
};

}  // namespace detail

/// Named after the mistake, with the layer in its name.
template <class L, class Ctx, class Chain = void>
struct layer_node_must_be_a_ctdl_node {
    using type = typename detail::raw_node<L, Ctx, Chain>::type;
    static constexpr bool value = detail::is_node_of<type, L, Ctx>();
    static_assert(value, "layer L: its template <class Ctx> struct node must be a ctdl::node: made with no "
                         "arguments, with out_shape (= L's output_shape<in_shape>), backward_needed, "
                         "forward(params, in, out, store), dout_transform(in, out) const and "
                         "backward(const graph::backward_io<T, Ep, In>&) (core/concepts.hpp, nn/layer.hpp)");
};

template <class L, class Ctx, class Chain = void>
using node_of = std::conditional_t<layer_node_must_be_a_ctdl_node<L, Ctx, Chain>::value,
                                   typename layer_node_must_be_a_ctdl_node<L, Ctx, Chain>::type,
                                   detail::inert_node<L, Ctx>>;

}  // namespace ctdl::graph
