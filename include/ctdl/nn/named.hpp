#pragma once
// named<"wte", L>: L, with its parameters under a name instead of the index its place in a
// sequential gives it (as a torch module attribute: "wte.weight" rather than "0.weight").
//
//   using gpt2_attn = nn::sequential<nn::named<"c_attn", nn::conv1d<D, 3 * D>>,
//                                    nn::causal_attention<D, Heads>,
//                                    nn::named<"c_proj", nn::conv1d<D, D>>>;
//   // parameters "c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"
//
// A name may hold dots ("transformer.h" is two levels of the state_dict written at once);
// named<"", L> adds no level. Everything else is L's: its counts, shapes, connections
// (in/out/keeps_features), whether it takes a fused pointwise chain, and its node, which is
// L's node itself, so fusion, pruning, packing and the connection checks see through it.
#include <cstddef>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../core/concepts.hpp"
#include "../core/fixed_string.hpp"
#include "../core/shape.hpp"
#include "../graph/frozen.hpp"
#include "connect.hpp"
#include "layer.hpp"
#include "sequential.hpp"

namespace ctdl {

/// Named after the mistake, with the part in its name.
template <class Part>
struct named_part_must_be_a_layer {
    static constexpr bool value = layer<Part>;
    static_assert(value, "nn::named<Name, L>: L must be a layer (parameter_count, trainable_parameter_count, "
                         "output_shape<S>, visit_parameters, initialize: ctdl::layer in core/concepts.hpp)");
};

template <bool Ok>
struct part_name_must_not_start_or_end_with_a_dot {
    static_assert(Ok, "nn::named<Name, L>: a name is one or more state_dict levels joined by dots, such as \"wte\" "
                      "or \"transformer.h\"; it may not start or end with a dot or hold \"..\"");
    static constexpr bool value = Ok;
};

namespace nn::detail {
constexpr bool well_formed_name(std::string_view s) {
    if (s.empty()) return true;
    if (s.front() == '.' || s.back() == '.') return false;
    // (A plain loop: GCC 12 with -fsanitize=undefined does not evaluate string_view::find
    // in a constant expression.)
    for (std::size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == '.' && s[i + 1] == '.') return false;
    return true;
}

/// A name as a pack of characters: the type named<"wte", L> stands for. (The CUDA front end
/// writes the types of device lambdas into host code it compiles again, and cannot spell a
/// class-type template argument holding an array there; a pack of chars it can.)
template <char... C>
struct name_chars {
    static constexpr char text[sizeof...(C) + 1] = {C..., '\0'};
    static constexpr std::string_view view{text, sizeof...(C)};
};
/// name_chars of Name's characters from I on, after C... (one at a time: nvcc's front end
/// does not match an index_sequence pack here).
template <fixed_string Name, std::size_t I = 0, char... C>
struct name_of {
    using type = typename std::conditional_t<(I >= Name.length), std::type_identity<name_chars<C...>>,
                                             name_of<Name, I + 1, C..., Name.text[I < Name.length ? I : 0]>>::type;
};
}  // namespace nn::detail

}  // namespace ctdl

namespace ctdl::nn {

/// What named<"wte", L> is: Name a detail::name_chars<'w', 't', 'e'>.
template <class Name, class Part>
struct named_part {
    // Each mistake is said once (by the check's own class); the refused part is then a
    // pass-through (a sequential of the identity), so its use adds no further error.
    static_assert(sizeof(part_name_must_not_start_or_end_with_a_dot<detail::well_formed_name(Name::view)>) > 0);
    using inner = std::conditional_t<named_part_must_be_a_layer<Part>::value, Part, sequential<detail::refused_part>>;
    using L = inner;
    static constexpr std::string_view name = Name::view;
    /// A sequential gives it no index level: its name is its level.
    static constexpr bool names_itself = true;

    static constexpr std::size_t parameter_count = L::parameter_count;
    static constexpr std::size_t trainable_parameter_count = L::trainable_parameter_count;
    static constexpr std::size_t in_features = detail::input_features<L>();
    static constexpr std::size_t out_features = detail::features_after<L>(detail::unknown_features);
    static constexpr bool keeps_features = detail::features_after<L>(detail::same_features) == detail::same_features;
    static constexpr bool fuses_pointwise = [] {
        if constexpr (requires { L::fuses_pointwise; }) return static_cast<bool>(L::fuses_pointwise);
        else return false;
    }();

    template <shape_like S>
    static constexpr bool accepts = ctdl::accepts<L, S>;
    template <shape_like S>
    using output_shape = typename L::template output_shape<S>;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        if constexpr (name.empty()) {
            L::visit_parameters(v, offset);
        } else {
            v.push(name);
            L::visit_parameters(v, offset);
            v.pop();
        }
    }
    template <class T, class Seed>
    static void initialize(T* params, Seed s, std::size_t offset) {
        L::initialize(params, s, offset);
    }

    /// L's node, given the fused chain when there is one.
    template <class Ctx, class... Chain>
    using node = typename ctdl::detail::frozen_node<L, Ctx, Chain...>::type;
};

/// L with its parameters under Name ("wte": "wte.weight").
template <fixed_string Name, class L>
using named = named_part<typename detail::name_of<Name>::type, L>;

}  // namespace ctdl::nn
