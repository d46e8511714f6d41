#pragma once
// Freezing parts of an existing architecture without renaming anything.
//
//   using tuned = ctdl::with_frozen<my_gpt, "0", "1", "2.0", "2.1">;   // embeddings, blocks 0-1
//   using head  = ctdl::freeze_first<2, mlp>;                           // layers 0 and 1 of a sequential
//
// A path is a parameter-name prefix as the snapshot spells it ("2.0" is part 0 of part 2).
// The part it names becomes frozen<part> in place; frozen<> adds no name level, so the
// rewritten type has exactly the original's parameter names, offsets and initial values, and
// a snapshot of the original loads into it with load_into as it is. Named graphs
// (`struct block : nn::sequential<...> {}`, models::gpt, nn::repeat) are rewritten through
// the sequential they derive from; residual<...> blocks pass a path on to their branch.
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/fixed_string.hpp"
#include "../nn/residual.hpp"
#include "../nn/sequential.hpp"
#include "frozen.hpp"

namespace ctdl {

/// Named after the mistake (the path and the part count are in the name).
template <std::size_t Index, std::size_t Parts>
struct freeze_path_must_name_a_part {
    static_assert(Index < Parts, "with_frozen: the path names a part that the graph does not have (parts are "
                                 "numbered from 0, as in the parameter names)");
    static constexpr bool value = Index < Parts;
};
template <class Part>
struct freeze_path_goes_inside_a_layer_without_parts {
    static_assert(!sizeof(Part*), "with_frozen: the path goes below a layer that has no numbered parts (only "
                                  "sequential graphs, their named subtypes and residual blocks have them)");
    static constexpr bool value = false;
};
template <bool WellFormed>
struct freeze_path_must_be_numbers_joined_by_dots {
    static_assert(WellFormed, "with_frozen: a path is part numbers joined by dots, such as \"2\" or \"2.0\"");
    static constexpr bool value = WellFormed;
};

namespace graph::detail {

template <class... L>
nn::sequential<L...> sequential_base(const nn::sequential<L...>&);
template <class A>
concept sequential_graph = requires(const A& a) { sequential_base(a); };
template <class A>
using sequential_of = decltype(sequential_base(std::declval<const A&>()));

/// The number at [pos, next '.') of Path, and where the rest starts (length + 1 at the end).
template <auto Path, std::size_t Pos>
struct path_step {
    static constexpr auto parse = [] {
        struct result {
            std::size_t index = 0, next = 0;
            bool ok = true;
        } r;
        std::size_t i = Pos, digits = 0;
        while (i < Path.length && Path.text[i] != '.') {
            const char c = Path.text[i];
            if (c < '0' || c > '9' || digits > 6) r.ok = false;
            else r.index = r.index * 10 + static_cast<std::size_t>(c - '0');
            ++i, ++digits;
        }
        if (digits == 0 || (i < Path.length && i + 1 == Path.length)) r.ok = false;  // "", "2.", "2..0"
        r.next = i + 1;
        return r;
    }();
    static constexpr bool ok = freeze_path_must_be_numbers_joined_by_dots<parse.ok>::value;
    static constexpr std::size_t index = ok ? parse.index : 0;
    static constexpr bool last = parse.next > Path.length;
};

template <class A, auto Path, std::size_t Pos>
struct freeze_one;

/// frozen<P>, or P itself where it has nothing to freeze (activations, parameter-free layers).
template <class P>
struct freeze_part {
    using type = std::conditional_t<(P::parameter_count > 0), frozen<P>, P>;
};

// F<L>::type where Rewrite, else L (F is instantiated only where it applies).
template <bool Rewrite, class L, template <class> class F>
struct rewrite_if {
    using type = L;
};
template <class L, template <class> class F>
struct rewrite_if<true, L, F> {
    using type = typename F<L>::type;
};

// Rewrites part Index of sequential<L...> with F.
template <class Seq, std::size_t Index, template <class> class F>
struct rewrite_part;
template <class... L, std::size_t Index, template <class> class F>
struct rewrite_part<nn::sequential<L...>, Index, F> {
    template <std::size_t... I>
    static auto make(std::index_sequence<I...>) {
        return std::type_identity<nn::sequential<typename rewrite_if<I == Index, L, F>::type...>>{};
    }
    using type = typename decltype(make(std::index_sequence_for<L...>{}))::type;
};

template <class A, auto Path, std::size_t Pos>
struct freeze_one {
    static auto make() {
        using step = path_step<Path, Pos>;
        if constexpr (!step::ok) {
            return std::type_identity<A>{};
        } else if constexpr (sequential_graph<A>) {
            using seq = sequential_of<A>;
            constexpr std::size_t parts = std::tuple_size_v<typename seq::layers>;
            if constexpr (!freeze_path_must_name_a_part<step::index, parts>::value) {
                return std::type_identity<A>{};
            } else if constexpr (step::last) {
                return std::type_identity<typename rewrite_part<seq, step::index, frozen_part>::type>{};
            } else {
                return std::type_identity<typename rewrite_part<seq, step::index, deeper>::type>{};
            }
        } else if constexpr (requires { typename A::inner; } && is_residual<A>::value) {
            // residual<L...> adds no name level: the path goes on in its branch.
            return std::type_identity<typename residual_with<A, typename freeze_one<typename A::inner, Path, Pos>::type>::type>{};
        } else {
            static_assert(freeze_path_goes_inside_a_layer_without_parts<A>::value);
            return std::type_identity<A>{};
        }
    }
    template <class P>
    struct frozen_part {
        using type = typename freeze_part<P>::type;
    };
    template <class P>
    struct deeper {
        using type = typename freeze_one<P, Path, path_step<Path, Pos>::parse.next>::type;
    };
    template <class R>
    struct is_residual : std::false_type {};
    template <class... L>
    struct is_residual<nn::residual<L...>> : std::true_type {};
    template <class R, class Inner>
    struct residual_with;
    template <class... L, class Inner>
    struct residual_with<nn::residual<L...>, Inner> {
        using type = nn::residual<Inner>;
    };
    using type = typename decltype(make())::type;
};

template <class A, auto... Paths>
struct freeze_all {
    using type = A;
};
template <class A, auto First, auto... Rest>
struct freeze_all<A, First, Rest...> {
    using type = typename freeze_all<typename freeze_one<A, First, 0>::type, Rest...>::type;
};

template <std::size_t N, class Seq, class Idx>
struct first_n;
template <std::size_t N, class... L, std::size_t... I>
struct first_n<N, nn::sequential<L...>, std::index_sequence<I...>> {
    static_assert(freeze_path_must_name_a_part<N - 1, sizeof...(L)>::value);
    using type = nn::sequential<std::conditional_t<(I < N), typename freeze_part<L>::type, L>...>;
};

}  // namespace graph::detail

/// A with the parts named by Paths frozen in place (parameter names unchanged).
template <class A, fixed_string... Paths>
using with_frozen = typename graph::detail::freeze_all<A, Paths...>::type;

/// A sequential (or a named graph derived from one) with its first N parts frozen.
template <std::size_t N, graph::detail::sequential_graph A>
using freeze_first = typename graph::detail::first_n<
    N, graph::detail::sequential_of<A>,
    std::make_index_sequence<std::tuple_size_v<typename graph::detail::sequential_of<A>::layers>>>::type;

}  // namespace ctdl
