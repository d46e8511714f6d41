#pragma once
// The fusion plan: how a sequential's layer list becomes steps, before nodes are made.
//
//   linear, P1, ..., Pk   ->  one step: its GEMM epilogue adds the bias and applies P1..Pk
//   P1, ..., Pk           ->  one step: a single elementwise pass (nn::chain_node)
//   anything else         ->  a step of its own
// where the P are pointwise layers (activations) and "linear" is any layer that says
// `fuses_pointwise` (frozen<linear> too). A step keeps the index of its layer in the list.
#include <cstddef>
#include <type_traits>

#include "../nn/layer.hpp"
#include "node_of.hpp"
#include "../nn/pointwise.hpp"

namespace ctdl::graph {

template <class... T>
struct type_list {};

/// One step after fusion: the layer at Index (void for a bare chain), with the pointwise
/// chain that follows it.
template <std::size_t Index, class Layer, class Chain>
struct step {
    static constexpr std::size_t index = Index;
    using layer = Layer;
    using chain_type = Chain;
    static constexpr std::size_t parameter_count = [] {
        if constexpr (std::is_void_v<Layer>) return std::size_t{0};
        else return Layer::parameter_count;
    }();
    static constexpr std::size_t trainable_parameter_count = [] {
        if constexpr (std::is_void_v<Layer>) return std::size_t{0};
        else return Layer::trainable_parameter_count;
    }();
};

/// A layer that takes the pointwise run after it into its own epilogue.
template <class L>
concept fuses_pointwise = requires { requires L::fuses_pointwise; };

namespace detail {

template <class List>
struct list_size;
template <class... T>
struct list_size<type_list<T...>> : std::integral_constant<std::size_t, sizeof...(T)> {};

// Collect the run of pointwise layers at the front of Rest into a chain.
template <class Chain, class... Rest>
struct take_pointwise {
    using chain_type = Chain;
    static constexpr std::size_t taken = 0;
    using rest = type_list<Rest...>;
};
template <class... P, class First, class... Rest>
    requires nn::pointwise_layer<First>
struct take_pointwise<nn::chain<P...>, First, Rest...> {
    using next = take_pointwise<nn::chain<P..., First>, Rest...>;
    using chain_type = typename next::chain_type;
    static constexpr std::size_t taken = 1 + next::taken;
    using rest = typename next::rest;
};

template <std::size_t Index, class Steps, class Layers>
struct plan;
template <std::size_t Index, class... Steps>
struct plan<Index, type_list<Steps...>, type_list<>> {
    using type = type_list<Steps...>;
};
template <std::size_t Index, class... Steps, class First, class... Rest>
struct plan<Index, type_list<Steps...>, type_list<First, Rest...>> {
    // A linear (or other epilogue-taking layer) swallows the pointwise run after it; a
    // pointwise run on its own becomes a chain; anything else stands alone.
    static auto make() {
        if constexpr (nn::pointwise_layer<First>) {
            using run = take_pointwise<nn::chain<First>, Rest...>;
            return plan<Index + 1 + run::taken, type_list<Steps..., step<Index, void, typename run::chain_type>>,
                        typename run::rest>{};
        } else if constexpr (fuses_pointwise<First>) {
            using run = take_pointwise<nn::chain<>, Rest...>;
            return plan<Index + 1 + run::taken, type_list<Steps..., step<Index, First, typename run::chain_type>>,
                        typename run::rest>{};
        } else {
            return plan<Index + 1, type_list<Steps..., step<Index, First, nn::chain<>>>, type_list<Rest...>>{};
        }
    }
    using type = typename decltype(make())::type;
};

}  // namespace detail

/// The steps of layers L... (a type_list of step<>).
template <class... L>
using fusion_plan = typename detail::plan<0, type_list<>, type_list<L...>>::type;

/// How many steps a plan has.
template <class Steps>
inline constexpr std::size_t step_count = detail::list_size<Steps>::value;

/// The output shape of a step for input shape S.
template <class Step, class S>
struct step_output {
    using type = S;
};
template <class Step, class S>
    requires(!std::is_void_v<typename Step::layer>)
struct step_output<Step, S> {
    using type = typename Step::layer::template output_shape<S>;
};

/// The node of one step in context Ctx: the layer's node (given its chain, if any), or a
/// chain_node for a bare chain.
template <class Step, class Ctx>
struct step_node {
    using type = node_of<typename Step::layer, Ctx>;
};
template <class Step, class Ctx>
    requires(std::is_void_v<typename Step::layer>)
struct step_node<Step, Ctx> {
    using type = nn::chain_node<typename Step::chain_type, Ctx>;
};
template <class Step, class Ctx>
    requires(!std::is_void_v<typename Step::layer> && !nn::is_empty_chain<typename Step::chain_type>)
struct step_node<Step, Ctx> {
    using type = node_of<typename Step::layer, Ctx, typename Step::chain_type>;
};

}  // namespace ctdl::graph
