#pragma once
// Rewriting the parts of an architecture by their state_dict paths, at compile time.
//
// A part's path is its parameter-name prefix: "2.0" is part 0 of part 2 of a sequential,
// "transformer.h.3.attn.c_attn" a part under nn::named levels. graph::rewrite<A, Rule> walks
// A's tree (sequential graphs and the named types derived from them, nn::named,
// nn::residual, frozen<>) and asks Rule of every part, with its path:
//
//   struct Rule {
//       template <class L, fixed_string Path> static auto on();  // -> replace<X>, keep or descend
//       template <class L, fixed_string Path> using leaf = ...;  // a leaf that on() descended to
//       static constexpr bool counts_inside_frozen = ...;        // walk frozen<> parts for matches
//   };
//
// replace<X> puts X in the part's place (one match); keep leaves the part and all inside it
// as it is; descend looks inside. The result has the same parameter names and offsets as A
// wherever the rule keeps the parameter counts (freezing and adapters do). A named graph type
// derived from a sequential (struct block : nn::sequential<...> {}) is kept where nothing in
// it changed; where something did, it becomes the plain sequential, unless it says how to
// remake itself from the rewritten one: `template <class Seq> using rewritten = ...`
// (models::gpt and models::gpt2 do, keeping their context length, initialisation and the
// tied head's offsets). rewrite<A, Rule>::matches counts the replaced parts, so that a path
// that names no part is an error where the rule is used (with_frozen, lora).
#include <cstddef>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/fixed_string.hpp"
#include "../nn/named.hpp"
#include "../nn/residual.hpp"
#include "../nn/sequential.hpp"
#include "frozen.hpp"

namespace ctdl::graph {

/// What a rewrite rule says of a part.
struct descend {};
struct keep {};
template <class X>
struct replace {
    using type = X;
};

namespace detail {

template <class... L>
nn::sequential<L...> sequential_base(const nn::sequential<L...>&);
/// A sequential, or a type derived from one (a named graph such as models::gpt).
template <class A>
concept sequential_graph = requires(const A& a) { sequential_base(a); };
template <class A>
using sequential_of = decltype(sequential_base(std::declval<const A&>()));

template <class X>
struct is_replace : std::false_type {};
template <class X>
struct is_replace<replace<X>> : std::true_type {};

template <class T, std::size_t M>
struct rewritten_as {
    using type = T;
    static constexpr std::size_t matches = M;
};

/// The path of part I of a sequential at Path: Path.I, or Path itself for a part that
/// names itself (nn::named adds its own level).
template <std::size_t I, class P, fixed_string Path>
inline constexpr auto child_path = [] {
    if constexpr (nn::names_itself<P>) return Path;
    else return join_path<Path, index_string<I>()>();
}();

/// Name as a fixed_string (N a nn::detail::name_chars).
template <class N>
inline constexpr auto name_string = fixed_string<sizeof(N::text)>(N::text);

template <class A, fixed_string Path, class Rule>
struct rewrite_tree;

template <class Seq, fixed_string Path, class Rule>
struct rewrite_parts;
template <class... L, fixed_string Path, class Rule>
struct rewrite_parts<nn::sequential<L...>, Path, Rule> {
    template <std::size_t... I>
    static auto make(std::index_sequence<I...>)
        -> rewritten_as<nn::sequential<typename rewrite_tree<L, child_path<I, L, Path>, Rule>::type...>,
                        (std::size_t{0} + ... + rewrite_tree<L, child_path<I, L, Path>, Rule>::matches)>;
    using result = decltype(make(std::index_sequence_for<L...>{}));
};

template <class R>
struct residual_parts {};
template <class... L>
struct residual_parts<nn::residual<L...>> {
    using inner = typename nn::residual<L...>::inner;
};

template <class A, fixed_string Path, class Rule>
struct rewrite_tree {
    using verdict = decltype(Rule::template on<A, Path>());
    template <class X>
    struct unfrozen {};
    template <class X>
    struct unfrozen<frozen<X>> {
        using type = X;
    };
    template <class X>
    struct named_parts {};
    template <class N, class X>
    struct named_parts<nn::named_part<N, X>> {
        using name = N;
        using inner = X;
    };

    static auto make() {
        if constexpr (is_replace<verdict>::value) {
            return rewritten_as<typename verdict::type, 1>{};
        } else if constexpr (std::is_same_v<verdict, keep>) {
            return rewritten_as<A, 0>{};
        } else if constexpr (requires { typename unfrozen<A>::type; }) {
            // A frozen part stays as it is; a rule that counts inside it (freezing: a part
            // inside one is already frozen) still finds its paths there.
            if constexpr (Rule::counts_inside_frozen)
                return rewritten_as<A, rewrite_tree<typename unfrozen<A>::type, Path, Rule>::matches>{};
            else
                return rewritten_as<A, 0>{};
        } else if constexpr (requires { typename named_parts<A>::inner; }) {
            using in = rewrite_tree<typename named_parts<A>::inner,
                                    join_path<Path, name_string<typename named_parts<A>::name>>(), Rule>;
            return rewritten_as<nn::named_part<typename named_parts<A>::name, typename in::type>, in::matches>{};
        } else if constexpr (requires { typename residual_parts<A>::inner; }) {
            using in = rewrite_tree<typename residual_parts<A>::inner, Path, Rule>;
            return rewritten_as<nn::residual<typename in::type>, in::matches>{};
        } else if constexpr (sequential_graph<A>) {
            using seq = sequential_of<A>;
            using r = typename rewrite_parts<seq, Path, Rule>::result;
            if constexpr (std::is_same_v<typename r::type, seq>)
                return rewritten_as<A, r::matches>{};
            else if constexpr (requires { typename A::template rewritten<typename r::type>; })
                return rewritten_as<typename A::template rewritten<typename r::type>, r::matches>{};
            else
                return r{};
        } else {
            return rewritten_as<typename Rule::template leaf<A, Path>, 0>{};
        }
    }
    using result = decltype(make());
    using type = typename result::type;
    static constexpr std::size_t matches = result::matches;
};

}  // namespace detail

/// A with its parts rewritten by Rule (above).
template <class A, class Rule>
using rewrite = detail::rewrite_tree<A, fixed_string(""), Rule>;

/// Whether Path is Target or a part of it ("2" of "2.0"; "" of anything).
constexpr bool path_leads_to(std::string_view path, std::string_view target) {
    if (path.empty()) return true;
    if (target.size() < path.size() || target.substr(0, path.size()) != path) return false;
    return target.size() == path.size() || target[path.size()] == '.';
}
/// Whether Path ends in the levels of Target ("transformer.h.0.attn.c_attn" and "attn.c_attn"),
/// as peft matches a target module name.
constexpr bool path_ends_with(std::string_view path, std::string_view target) {
    if (path == target) return true;
    if (path.size() <= target.size()) return false;
    return path.substr(path.size() - target.size()) == target && path[path.size() - target.size() - 1] == '.';
}

/// f.template operator()<P>(offset) for A and every part inside it, parents first, with the
/// part's offset in the parameter buffer (sequential parts, named, residual and frozen<>).
template <class A, class F>
constexpr void for_each_part(F& f, std::size_t offset) {
    f.template operator()<A>(offset);
    if constexpr (requires { typename A::inner; }) {  // frozen<>, named, residual: no offset of their own
        for_each_part<typename A::inner>(f, offset);
    } else if constexpr (detail::sequential_graph<A>) {
        using seq = detail::sequential_of<A>;
        std::apply([&]<class... L>(std::type_identity<L>...) { ((for_each_part<L>(f, offset), offset += L::parameter_count), ...); },
                   []<class... L>(std::type_identity<std::tuple<L...>>) {
                       return std::tuple<std::type_identity<L>...>{};
                   }(std::type_identity<typename seq::layers>{}));
    }
}

}  // namespace ctdl::graph
