#pragma once
// What every layer's node derives from its context (graph/context.hpp), stated once:
//
//   struct node : graph::node_base<Ctx, parameter_count> {
//       using base = graph::node_base<Ctx, parameter_count>;
//       using typename base::T, typename base::Exec, typename base::in_shape;
//       using base::rows, base::need_dw, base::need_dx;
//
// and the gradient-path pruning rule for a layer:
//   need_dw: it has parameters and is not frozen;
//   need_dx: its context asks for a gradient at its input (never into token ids);
//   backward_needed = need_dw || need_dx. A node without it has no backward work and keeps
//   no activation cache (cache below is then an empty object).
// Graphs (sequential, residual) do not derive from it: their backward_needed comes from
// their parts.
#include <cstddef>
#include <type_traits>

#include "../core/shape.hpp"
#include "decode.hpp"
#include "node_io.hpp"

namespace ctdl::graph {

/// What a node keeps for its backward pass when there is none: nothing, with a null data().
template <class T>
struct no_cache {
    constexpr no_cache() = default;
    constexpr explicit no_cache(std::size_t) {}
    constexpr T* data() const { return nullptr; }
};

/// Exec's buffer of T when Keep, else no_cache<T>; made from an element count either way.
template <bool Keep, class T, class Exec>
using cache_if = std::conditional_t<Keep, typename Exec::template buffer<T>, no_cache<T>>;

template <class Ctx, std::size_t ParamCount = 0>
struct node_base {
    using T = typename Ctx::value_type;
    using Exec = typename Ctx::exec_type;
    using in_shape = typename Ctx::in_shape;
    using buffer = typename Exec::template buffer<T>;
    /// The input as rows of its last axis.
    static constexpr std::size_t rows = leading_size<in_shape>, cols = last_extent<in_shape>;
    static constexpr bool need_dw = !Ctx::frozen && ParamCount > 0;
    static constexpr bool need_dx = Ctx::need_dx && !std::is_integral_v<typename Ctx::input_type>;
    static constexpr bool backward_needed = need_dw || need_dx;
    /// An activation cache: a buffer of n elements where there is a backward pass, else nothing.
    using cache = cache_if<backward_needed, T, Exec>;
};

}  // namespace ctdl::graph
