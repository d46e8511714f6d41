#pragma once
// What the library's parts are, as concepts, and whether a layer takes a shape.
//
//   ctdl::layer<L>               a layer descriptor (nn/layer.hpp says what each member means)
//   ctdl::node<N, Ctx>           the runtime part of a layer in a context (its node<Ctx>)
//   ctdl::execution_policy<E>    what every policy offers (ctdl::cpu, ctdl::device)
//   ctdl::optimizer<O>           what train_step and train::run need of an optimizer
//   ctdl::accepts<L, S>          true when layer L takes input shape S; false, without any
//                                error, when it refuses it (SFINAE-friendly)
//
// Each is checked where it is used, in a class whose name says the mistake and carries the
// type (model<Arch, Exec>: model_policy_must_be_an_execution_policy<Exec>, ...), so the
// first error line names it and one sentence says what is missing.
//
// A layer that refuses some shapes states its predicate as a member
//   template <shape_like S> static constexpr bool accepts = <condition>;
// which its own shape check (the static_assert behind its output_shape) and ctdl::accepts
// both use. A layer that states none is asked whether its output_shape<S> forms: safe only
// for layers whose output_shape has no static_assert (parameter-free and pointwise layers,
// which take any shape).
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../exec/epilogue.hpp"
#include "../exec/hd.hpp"
#include "../graph/node_io.hpp"
#include "random.hpp"
#include "shape.hpp"

namespace ctdl {

namespace detail::concept_probes {

/// Binds a layer's `template <shape_like> using output_shape`: whether L has one at all,
/// without giving it a shape (which it might refuse). (The parameter is unconstrained: g++ 12
/// does not bind a constrained member alias of a class template to a constrained one.)
template <template <class> class>
struct shape_template {};

/// What visit_parameters is called with (parameter_table_builder's interface).
struct parameter_visitor {
    constexpr void push(std::size_t) {}
    constexpr void push(std::string_view) {}
    constexpr void pop() {}
    constexpr void push_frozen() {}
    constexpr void pop_frozen() {}
    constexpr void param(const char*, std::size_t, std::initializer_list<std::size_t>) {}
};

/// Functors of the kinds the policies' primitives run.
struct index_function {
    CTDL_HD void operator()(std::size_t) const {}
};
struct sum_function {
    CTDL_HD double operator()(std::size_t) const { return 0.0; }
};
struct map_function {
    CTDL_HD float operator()(float x) const { return x; }
};

}  // namespace detail::concept_probes

// ---------------------------------------------------------------- layer

/// A layer descriptor: parameter counts, an output_shape template, visit_parameters and
/// initialize (nn/layer.hpp). Its node<Ctx> is checked where it is made: ctdl::node below.
template <class L>
concept layer = requires(detail::concept_probes::parameter_visitor& v, float* params) {
    { L::parameter_count } -> std::convertible_to<std::size_t>;
    { L::trainable_parameter_count } -> std::convertible_to<std::size_t>;
    typename detail::concept_probes::shape_template<L::template output_shape>;
    L::visit_parameters(v, std::size_t{0});
    L::initialize(params, seed{0}, std::size_t{0});
};

// ---------------------------------------------------------------- node<Ctx>

/// The runtime part of a layer in context Ctx (graph/context.hpp: value type T, input
/// element type In, policy, offsets, what is frozen): made with no arguments, it states
///   out_shape                          its output shape,
///   backward_needed                    whether it has backward work,
///   forward(params, in, out, store)    y = f(x), keeping what backward reads when store,
///   dout_transform(in, out) const      the epilogue applied to the gradient it receives,
///   backward(const graph::backward_io<T, epilogue::none, In>&)   (graph/node_io.hpp).
/// Every node is checked where it is made (graph/node_of.hpp), against its layer's
/// output_shape too.
template <class N, class Ctx>
concept node =
    requires {
        typename N::out_shape;
        { N::backward_needed } -> std::convertible_to<bool>;
    } && shape_like<typename N::out_shape> && std::default_initializable<N> &&
    requires(N& nd, const N& cn, const typename Ctx::value_type* params, const typename Ctx::input_type* in,
             typename Ctx::value_type* out, bool store,
             const graph::backward_io<typename Ctx::value_type, epilogue::none, typename Ctx::input_type>& io) {
        nd.forward(params, in, out, store);
        cn.dout_transform(in, static_cast<const typename Ctx::value_type*>(out));
        nd.backward(io);
    };

// ---------------------------------------------------------------- execution_policy

/// What every execution policy offers (ctdl::cpu, ctdl::device): its buffer type, whether
/// host code can read its memory, the primitives (for_each_index, sum, copies) and the
/// kernels the layers run through it (gemm, map_rows, sum_cols). Optional extras (packed
/// weights, threads) are asked for where they are used.
template <class E>
concept execution_policy =
    requires(std::size_t n, const float* src, float* dst, detail::concept_probes::index_function f,
             detail::concept_probes::sum_function s, detail::concept_probes::map_function m) {
        typename E::template buffer<float>;
        requires std::constructible_from<typename E::template buffer<float>, std::size_t>;
        { std::declval<typename E::template buffer<float>&>().data() } -> std::same_as<float*>;
        { std::declval<const typename E::template buffer<float>&>().size() } -> std::convertible_to<std::size_t>;
        { E::host_accessible } -> std::convertible_to<bool>;
        E::for_each_index(n, f);
        E::for_each_index(n, f, n);
        { E::sum(n, s) } -> std::convertible_to<double>;
        E::copy_to_host(src, dst, n);
        E::copy_from_host(src, dst, n);
        E::copy(src, dst, n);
        E::template gemm<trans::n, trans::n>(n, n, n, src, n, src, n, dst, n);
        E::template gemm<trans::n, trans::t>(n, n, n, src, n, src, n, dst, n, false, epilogue::none{});
        E::template gemm<trans::t, trans::n>(n, n, n, src, n, src, n, dst, n, true);
        E::map_rows(n, n, dst, m, epilogue::none{}, src);
        E::sum_cols(n, n, src, dst);
        E::sum_cols(n, n, src, dst, true);
    };

// ---------------------------------------------------------------- optimizer

/// What train_step and train::run need of an optimizer (optim::sgd, adam, adamw): the model
/// type it follows, whether it could be made for it (usable), steps (optionally with the
/// gradients scaled), its learning rate, its step count and state (checkpoints), and the
/// model object it was made from.
template <class O>
concept optimizer = requires(O& o, const O& co, std::uint64_t n) {
    typename O::model_type;
    typename O::model_type::value_type;
    { O::usable } -> std::convertible_to<bool>;
    o.step();
    o.step(std::declval<typename O::model_type::value_type>());
    { co.lr() } -> std::convertible_to<typename O::model_type::value_type>;
    o.set_lr(std::declval<typename O::model_type::value_type>());
    { co.step_count() } -> std::convertible_to<std::uint64_t>;
    o.set_step_count(n);
    o.state_tensors();
    { co.model() } -> std::same_as<typename O::model_type&>;
};

// ---------------------------------------------------------------- accepts

namespace detail {

template <class L, class S>
constexpr bool layer_accepts() {
    if constexpr (!shape_like<S>) return false;
    else if constexpr (requires { { L::template accepts<S> } -> std::convertible_to<bool>; })
        return static_cast<bool>(L::template accepts<S>);
    else
        return requires { typename L::template output_shape<S>; };
}

}  // namespace detail

/// Whether layer L takes input shape S: a plain false (no error) when it does not, so that
/// a program can ask before it builds anything:
///   static_assert(!ctdl::accepts<nn::linear<128, 10>, shape<64, 256>>);
///   template <ctdl::accepts<shape<8, 32>> L> ...
template <class L, class S>
concept accepts = detail::layer_accepts<L, S>();

namespace detail {

/// Whether the shape S flows through Parts... one after another, each taking what the one
/// before it gives; stops at the first refusal without asking for that part's output shape.
template <class S, class... Parts>
struct flow_accepts : std::true_type {};
template <class S, class First, class... Rest>
struct flow_accepts<S, First, Rest...> {
    static constexpr bool value = [] {
        if constexpr (ctdl::accepts<First, S>)
            return flow_accepts<typename First::template output_shape<S>, Rest...>::value;
        else
            return false;
    }();
};

/// Whether L takes S and gives S back (a residual branch).
template <class L, class S>
constexpr bool keeps_shape() {
    if constexpr (ctdl::accepts<L, S>) return std::same_as<typename L::template output_shape<S>, S>;
    else return false;
}

}  // namespace detail

}  // namespace ctdl
