#pragma once
// frozen<A>: A with its parameters turned into constants.
//
// frozen<A> has A's parameters, names and function, and no trainable parameters. In a
// model, the context of its nodes says `frozen`, so no node inside it computes dW, and
// a node inside computes dX only when something trainable lies before it.
// model<frozen<A>> has no gradient buffer and no backward pass at all.
#include <cstddef>

#include "../core/shape.hpp"
#include "../nn/connect.hpp"
#include "../nn/layer.hpp"

namespace ctdl {

namespace detail {
/// A's node in the frozen context, with the pointwise chain fused into it if there is one.
/// (One specialisation per arity: nvcc refuses a pack expanded into node's fixed parameters.)
template <class A, class Ctx, class... Chain>
struct frozen_node;
template <class A, class Ctx>
struct frozen_node<A, Ctx> {
    using type = typename A::template node<Ctx>;
};
template <class A, class Ctx, class Chain>
struct frozen_node<A, Ctx, Chain> {
    using type = typename A::template node<Ctx, Chain>;
};
}  // namespace detail

template <class A>
struct frozen {
    static_assert(nn::layer<A>, "frozen<A>: A must be a layer or a graph of layers");
    using inner = A;
    static constexpr std::size_t parameter_count = A::parameter_count;
    static constexpr std::size_t trainable_parameter_count = 0;
    static constexpr std::size_t in_features = nn::detail::input_features<A>();
    static constexpr std::size_t out_features = nn::detail::features_after<A>(0);
    static constexpr bool keeps_features = nn::detail::features_after<A>(nn::detail::same_features) == nn::detail::same_features;

    /// A's shapes.
    template <shape_like S>
    static constexpr bool accepts = ctdl::accepts<A, S>;
    template <shape_like S>
    using output_shape = typename A::template output_shape<S>;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.push_frozen();
        A::visit_parameters(v, offset);
        v.pop_frozen();
    }

    template <class T, class Seed>
    static void initialize(T* params, Seed s, std::size_t offset) {
        A::initialize(params, s, offset);
    }

    /// frozen<> adds no name level, so frozen<named<...>> names itself too.
    static constexpr bool names_itself = nn::names_itself<A>;

    /// A frozen linear still takes the activations after it into its GEMM (graph/fusion.hpp).
    static constexpr bool fuses_pointwise = [] {
        if constexpr (requires { A::fuses_pointwise; }) return static_cast<bool>(A::fuses_pointwise);
        else return false;
    }();

    template <class Ctx, class... Chain>
    using node = typename detail::frozen_node<
        A, typename Ctx::template child<typename Ctx::in_shape, Ctx::param_offset, Ctx::grad_offset, Ctx::need_dx, true>,
        Chain...>::type;
};

template <class A>
struct frozen<frozen<A>> : frozen<A> {};

}  // namespace ctdl
