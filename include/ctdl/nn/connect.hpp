#pragma once
// Connections known from the layer types alone: a layer with fixed input features (linear,
// layer_norm, attention...) after one with fixed output features must agree with it, and a
// sequential says so when its type is used -- before any input shape is given.
//
// A layer type may state
//   in_features      the last extent its input must have (absent: any),
//   out_features     the last extent of its output (absent: see keeps_features),
//   keeps_features   true when its output has its input's last extent (activations,
//                    parameter-free layers, residual blocks).
// Graphs (sequential) derive all three from their parts, so named blocks connect too.
#include <cstddef>
#include <tuple>

namespace ctdl {

/// Named after the mistake, with both layers and both sizes in its name.
template <class From, std::size_t FromOut, class To, std::size_t ToIn>
struct sequential_layers_must_connect {
    static_assert(FromOut == ToIn,
                  "sequential: a layer's input features (its In) must equal the output features of the layer "
                  "before it (its Out)");
    static constexpr bool value = FromOut == ToIn;
};

namespace nn::detail {

/// Features "whatever came in": the input's own last extent, not known from the types.
inline constexpr std::size_t same_features = static_cast<std::size_t>(-1);
/// Features not known from the types (e.g. after a layer that states nothing).
inline constexpr std::size_t unknown_features = 0;

template <class L>
constexpr std::size_t input_features() {
    if constexpr (requires { L::in_features; }) return L::in_features;
    else return unknown_features;
}

/// The last extent after L when f came in.
template <class L>
constexpr std::size_t features_after(std::size_t f) {
    if constexpr (requires { L::out_features; }) {
        if (L::out_features != unknown_features) return L::out_features;
    }
    if constexpr (requires { L::keeps_features; }) {
        if (L::keeps_features) return f;
    }
    return unknown_features;
}

/// The first broken connection in L...: the layer that set the features (from), the one
/// that wants others (to), and both sizes; from == npos when every connection holds.
struct connection {
    std::size_t from = static_cast<std::size_t>(-1), to = 0, out = 0, in = 0;
    std::size_t in_features = unknown_features;  // what the first layer that asks wants
    std::size_t out_features = same_features;    // what comes out of the whole chain
};

template <class... L>
constexpr connection trace_connections() {
    connection c;
    constexpr std::size_t n = sizeof...(L);
    const std::size_t wants[n] = {input_features<L>()...};
    std::size_t f = same_features, source = 0, i = 0;
    bool broken = false, before_any = true;
    auto step = [&](std::size_t next) {
        if (!broken && wants[i] != unknown_features) {
            if (f == same_features) {
                if (before_any) c.in_features = wants[i];
            } else if (f != unknown_features && f != wants[i]) {
                c.from = source, c.to = i, c.out = f, c.in = wants[i];
                broken = true;
            }
        }
        if (next != f) source = i;
        if (wants[i] != unknown_features || next != same_features) before_any = false;
        f = next;
        ++i;
    };
    // Each layer's output features follow from what came before it.
    ((step(features_after<L>(f))), ...);
    c.out_features = f;
    if (broken) c.out_features = unknown_features;
    return c;
}

/// True when L... connect; otherwise instantiates the check that names the broken pair.
template <class... L>
constexpr bool connected() {
    constexpr connection c = trace_connections<L...>();
    if constexpr (c.from == static_cast<std::size_t>(-1)) {
        return true;
    } else {
        using all = std::tuple<L...>;
        return sequential_layers_must_connect<std::tuple_element_t<c.from, all>, c.out,
                                              std::tuple_element_t<c.to, all>, c.in>::value;
    }
}

}  // namespace nn::detail

}  // namespace ctdl
