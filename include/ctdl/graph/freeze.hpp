#pragma once
// Freezing parts of an existing architecture without renaming anything.
//
//   using tuned = ctdl::with_frozen<my_gpt, "0", "1", "2.0", "2.1">;   // embeddings, blocks 0-1
//   using head  = ctdl::freeze_first<2, mlp>;                           // layers 0 and 1 of a sequential
//
// A path is a parameter-name prefix as the snapshot spells it ("2.0" is part 0 of part 2).
// The part it names becomes frozen<part> in place; frozen<> adds no name level, so the
// rewritten type has exactly the original's parameter names, offsets and initial values, and
// a snapshot of the original loads into it with load_into as it is. A path goes through
// numbered parts and nn::named levels alike ("transformer.h.0" of models::gpt2); named graphs
// (`struct block : nn::sequential<...> {}`, models::gpt, nn::repeat) are rewritten through
// the sequential they derive from (graph/rewrite.hpp); residual<...> blocks pass a path on to
// their branch. with_frozen_where<A, Pred> freezes by kind instead of by path.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/fixed_string.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/residual.hpp"
#include "../ops/rms_norm/layer.hpp"
#include "../nn/sequential.hpp"
#include "frozen.hpp"
#include "rewrite.hpp"

namespace ctdl {

namespace nn {
/// Whether L is a normalisation layer (layer_norm, rms_norm): with_frozen_where<A, nn::is_norm>.
template <class L>
struct is_norm : std::false_type {};
template <std::size_t N>
struct is_norm<layer_norm<N>> : std::true_type {};
template <std::size_t N, class Eps>
struct is_norm<rms_norm<N, Eps>> : std::true_type {};
}  // namespace nn

/// Named after the mistake, with the path in its name.
template <fixed_string Path, std::size_t Matches>
struct with_frozen_path_must_name_a_part {
    static_assert(Matches > 0, "with_frozen: no part of the graph has this path (a path is a state_dict prefix "
                               "such as \"2\", \"2.0\" or \"transformer.h.0\": parts are numbered from 0, "
                               "named parts by their names, as in the parameter names)");
    static constexpr bool value = Matches > 0;
};
template <bool WellFormed>
struct freeze_path_must_be_names_joined_by_dots {
    static_assert(WellFormed, "with_frozen: a path is part numbers or names joined by dots, such as \"2.0\" or "
                              "\"transformer.h.0\"; it is not empty and does not start or end with a dot");
    static constexpr bool value = WellFormed;
};
/// Named after the mistake, with the predicate's first refusal in its name.
template <template <class> class Pred, std::size_t Matches>
struct with_frozen_where_must_match_a_part {
    static_assert(Matches > 0, "with_frozen_where: the predicate holds for no part of the graph");
    static constexpr bool value = Matches > 0;
};

namespace graph::detail {

/// frozen<P>, or P itself where it has nothing to freeze (activations, parameter-free layers).
template <class P>
struct freeze_part {
    using type = std::conditional_t<(P::parameter_count > 0), frozen<P>, P>;
};

/// Freezes the part at Target.
template <fixed_string Target>
struct freeze_path_rule {
    static constexpr bool counts_inside_frozen = true;
    template <class L, fixed_string Path>
    static auto on() {
        if constexpr (Path.view() == Target.view()) return replace<typename freeze_part<L>::type>{};
        else if constexpr (path_leads_to(Path.view(), Target.view())) return descend{};
        else return keep{};
    }
    template <class L, fixed_string>
    using leaf = L;
};

/// Freezes every part for which Pred<part>::value holds.
template <template <class> class Pred>
struct freeze_where_rule {
    static constexpr bool counts_inside_frozen = true;
    template <class L, fixed_string>
    static auto on() {
        if constexpr (Pred<L>::value) return replace<typename freeze_part<L>::type>{};
        else return descend{};
    }
    template <class L, fixed_string>
    using leaf = L;
};

template <class A, fixed_string Path>
struct freeze_one {
    static constexpr bool ok =
        freeze_path_must_be_names_joined_by_dots<!Path.view().empty() && nn::detail::well_formed_name(Path.view())>::value;
    using r = rewrite<A, freeze_path_rule<Path>>;
    static auto make() {
        if constexpr (!ok) return std::type_identity<A>{};
        else if constexpr (!with_frozen_path_must_name_a_part<Path, r::matches>::value) return std::type_identity<A>{};
        else return std::type_identity<typename r::type>{};
    }
    using type = typename decltype(make())::type;
};

template <class A, fixed_string... Paths>
struct freeze_all {
    using type = A;
};
template <class A, fixed_string First, fixed_string... Rest>
struct freeze_all<A, First, Rest...> {
    using type = typename freeze_all<typename freeze_one<A, First>::type, Rest...>::type;
};

template <class A, template <class> class Pred>
struct freeze_where {
    using r = rewrite<A, freeze_where_rule<Pred>>;
    using type = std::conditional_t<with_frozen_where_must_match_a_part<Pred, r::matches>::value, typename r::type, A>;
};

/// Named after the mistake, with the counts in its name.
template <std::size_t N, std::size_t Parts>
struct freeze_first_must_name_parts_the_graph_has {
    static_assert(N >= 1 && N <= Parts, "freeze_first<N, S>: N must be between 1 and the number of S's parts");
    static constexpr bool value = N >= 1 && N <= Parts;
};

template <std::size_t N, class A, class Seq, class Idx>
struct first_n;
template <std::size_t N, class A, class... L, std::size_t... I>
struct first_n<N, A, nn::sequential<L...>, std::index_sequence<I...>> {
    static constexpr bool ok = freeze_first_must_name_parts_the_graph_has<N, sizeof...(L)>::value;
    using seq = nn::sequential<std::conditional_t<(ok && I < N), typename freeze_part<L>::type, L>...>;
    static auto make() {
        if constexpr (requires { typename A::template rewritten<seq>; }) return std::type_identity<typename A::template rewritten<seq>>{};
        else return std::type_identity<seq>{};
    }
    using type = typename decltype(make())::type;
};

}  // namespace graph::detail

/// A with the parts named by Paths frozen in place (parameter names unchanged).
template <class A, fixed_string... Paths>
using with_frozen = typename graph::detail::freeze_all<A, Paths...>::type;

/// A with every part for which Pred<part>::value holds frozen in place, e.g.
/// with_frozen_where<gpt, nn::is_norm> (every layer norm).
template <class A, template <class> class Pred>
using with_frozen_where = typename graph::detail::freeze_where<A, Pred>::type;

/// A sequential (or a named graph derived from one) with its first N parts frozen.
template <std::size_t N, graph::detail::sequential_graph A>
using freeze_first = typename graph::detail::first_n<
    N, A, graph::detail::sequential_of<A>,
    std::make_index_sequence<std::tuple_size_v<typename graph::detail::sequential_of<A>::layers>>>::type;

}  // namespace ctdl
