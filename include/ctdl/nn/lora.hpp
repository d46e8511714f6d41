#pragma once
// nn::lora<Base, lora::config<Rank, Alpha, Dropout>>: a frozen linear (or GPT-2 Conv1D) layer
// plus trainable low-rank factors, as peft's LoRA computes it:
//
//   y = base(x) + s · dropout(x) Aᵀ Bᵀ,   s = Alpha / Rank,
//   A [Rank, In] ~ U(-1/√In, 1/√In) (kaiming_uniform, a = √5), B [Out, Rank] = 0,
//
// so a wrapped model starts equal to its base. Parameters: the base's own, under the base's
// own names (a pretrained snapshot loads into the wrapped type as it is: lora::load_base),
// then "lora_A.weight" [Rank, In] and "lora_B.weight" [Out, Rank], peft's names (its adapter
// file drops the adapter name: "...c_attn.lora_A.weight"). Only A and B train.
//
// The node: the base's node in a frozen context (forward, packing, dX), then
//   h = s · x_d Aᵀ [rows, Rank]      (one GEMM, s in its epilogue; x_d = dropout(x) or x)
//   y += h Bᵀ                        (one GEMM accumulating into the base's output)
// and backward, from dy:
//   dB = dyᵀ h,   g = s · dy B [rows, Rank],   dA = gᵀ x_d,
//   dx = dy Wᵀ(base) + (g A) ⊙ mask   (the adapter's part added in the base's dX epilogue).
//
// ctdl::with_lora<A, lora::config<8, 16>, "attn.c_attn", "attn.c_proj"> is A with every linear
// or Conv1D part whose path ends in a target's levels (as peft matches target_modules: a
// target is the part's whole path or its last levels) adapted, and every other parameter of
// A frozen, as peft's get_peft_model leaves a model. Parameter names are A's, plus the
// adapters'. A target that matches nothing, or a part that is not a linear layer, is a
// compile error.
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "../core/init.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "../exec/epilogue.hpp"
#include "../exec/hd.hpp"
#include "../graph/decode.hpp"
#include "../graph/frozen.hpp"
#include "../graph/node_base.hpp"
#include "../graph/node_of.hpp"
#include "../graph/rewrite.hpp"
#include "../ops/linear/layer.hpp"
#include "dropout.hpp"
#include "layer.hpp"
#include "residual.hpp"

namespace ctdl::lora {

/// A LoRA adapter's shape: rank r, alpha (the scaling is alpha / r, as peft's without
/// rslora) and the dropout on the adapter's input while training.
template <std::size_t Rank, std::size_t Alpha, double Dropout = 0.0>
struct config {
    static_assert(Rank > 0, "lora::config<Rank, Alpha>: Rank must be at least 1");
    static_assert(Alpha > 0, "lora::config<Rank, Alpha>: Alpha must be at least 1");
    static_assert(Dropout >= 0.0 && Dropout < 1.0, "lora::config: Dropout must be in [0, 1)");
    static constexpr std::size_t rank = Rank, alpha = Alpha;
    static constexpr double dropout = Dropout;
    static constexpr double scaling = static_cast<double>(Alpha) / static_cast<double>(Rank);
};

}  // namespace ctdl::lora

namespace ctdl {

/// Named after the mistake, with the part in its name.
template <class Base>
struct lora_base_must_be_a_linear_layer {
    static constexpr bool value = requires {
        Base::in_features;
        Base::out_features;
        Base::layout;
        Base::has_bias;
        requires std::is_same_v<Base, nn::linear<Base::in_features, Base::out_features, Base::has_bias, Base::layout>>;
    };
    static_assert(value, "nn::lora<Base, Config>: Base must be an nn::linear or nn::conv1d layer (the parts LoRA "
                         "adapts; a with_lora target must name such a part)");
};

}  // namespace ctdl

namespace ctdl::nn {

namespace detail {
/// c *= s on each finished segment of a GEMM's output.
template <class T>
struct scale_by {
    T s;
    CTDL_HD void operator()(std::size_t, std::size_t, T* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) c[j] *= s;
    }
};
}  // namespace detail

template <class Base, class Config>
struct lora {
    static constexpr bool base_ok = lora_base_must_be_a_linear_layer<Base>::value;
    using base_layer = std::conditional_t<base_ok, Base, linear<1, 1>>;
    using config = Config;
    static constexpr std::size_t In = base_layer::in_features, Out = base_layer::out_features, Rank = Config::rank;
    static constexpr std::size_t in_features = In, out_features = Out;
    static constexpr std::size_t base_parameters = base_layer::parameter_count;
    static constexpr std::size_t adapter_parameters = Rank * In + Out * Rank;
    static constexpr std::size_t parameter_count = base_parameters + adapter_parameters;
    static constexpr std::size_t trainable_parameter_count = adapter_parameters;
    static constexpr bool fuses_pointwise = false;
    /// Marks an adapted part (lora::merge, lora::save_adapter).
    static constexpr bool is_lora_adapter = true;

    template <shape_like S>
    static constexpr bool accepts = base_layer::template accepts<S>;
    template <shape_like S>
    using output_shape = typename base_layer::template output_shape<S>;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        v.push_frozen();
        base_layer::visit_parameters(v, offset);
        v.pop_frozen();
        v.push("lora_A");
        v.param("weight", offset + base_parameters, {Rank, In});
        v.pop();
        v.push("lora_B");
        v.param("weight", offset + base_parameters + Rank * In, {Out, Rank});
        v.pop();
    }

    /// The base as it initialises itself, then the adapter.
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        base_layer::initialize(params, s, offset);
        initialize_adapter(params, s, offset);
    }
    /// A as peft initialises it (kaiming_uniform, a = √5: U(-1/√In, 1/√In)), B = 0.
    template <class T>
    static void initialize_adapter(T* params, seed s, std::size_t offset) {
        T* a = params + offset + base_parameters;
        init::linear_weight(tensor_view<T, shape<Rank, In>>(a), random_stream(s, offset + base_parameters), In);
        init::zeros(tensor_view<T, shape<Out, Rank>>(a + Rank * In));
    }

    template <class Ctx>
    struct node : graph::node_base<Ctx, parameter_count> {
        using base = graph::node_base<Ctx, parameter_count>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::need_dx;
        using out_shape = output_shape<in_shape>;
        /// Only the adapter trains: no dW for the base whatever the context.
        static constexpr bool need_dw = !Ctx::frozen;
        static constexpr bool backward_needed = need_dw || need_dx;
        static constexpr bool drops = Config::dropout > 0.0;
        static constexpr std::size_t a_offset = Ctx::param_offset + base_parameters, b_offset = a_offset + Rank * In;
        static constexpr std::size_t rows_held = Ctx::decode ? Ctx::decode_capacity : rows;

        using base_node = graph::node_of<frozen<base_layer>, Ctx>;
        // The dropout's stream is numbered by A's offset: its own place in the model.
        using drop_node = typename dropout<Config::dropout>::template node<
            typename Ctx::template child<in_shape, a_offset, Ctx::grad_offset, need_dx>>;

        template <class F>
        void visit_children(F& f) {
            for_each_node(base_, f);
            if constexpr (drops) for_each_node(drop_, f);
        }

        void forward(const T* params, const T* in, T* out, bool store) {
            base_.forward(params, in, out, store);
            const T* x = in;
            if constexpr (drops && backward_needed) {
                if (store) {
                    drop_.forward(params, in, xd_.data(), true);
                    x = xd_.data();
                }
            }
            adapt(params, x, out, rows);
        }
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d)
            requires decoding_node<base_node, Ctx>
        {
            base_.decode(params, in, out, d);
            adapt(params, in, out, d.rows);
        }
        epilogue::none dout_transform(const T*, const T*) const { return {}; }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            const T* a = io.params + a_offset;
            const T* b = io.params + b_offset;
            const T* x = io.in;
            if constexpr (drops && backward_needed) x = xd_.data();
            if constexpr (need_dw)  // dB [Out, Rank] = dyᵀ h
                Exec::template gemm<trans::t, trans::n>(Out, Rank, rows, io.dout, Out, h_.data(), Rank,
                                                        io.grads + Ctx::grad_offset + Rank * In, Rank, io.accumulate);
            // g = s · dy B [rows, Rank]
            Exec::template gemm<trans::n, trans::n>(rows, Rank, Out, io.dout, Out, b, Rank, g_.data(), Rank, false,
                                                    detail::scale_by<T>{static_cast<T>(Config::scaling)});
            if constexpr (need_dw)  // dA [Rank, In] = gᵀ x_d
                Exec::template gemm<trans::t, trans::n>(Rank, In, rows, g_.data(), Rank, x, In,
                                                        io.grads + Ctx::grad_offset, In, io.accumulate);
            if constexpr (need_dx) {
                // The adapter's part of dx, g A (through the dropout's mask), added in the base's dX epilogue.
                Exec::template gemm<trans::n, trans::n>(rows, In, Rank, g_.data(), Rank, a, In, dx_.data(), In);
                if constexpr (drops)
                    drop_.backward(io.part(io.in, static_cast<const T*>(xd_.data()), static_cast<const T*>(dx_.data()),
                                           dx_.data(), epilogue::none{}));
                base_.backward(io.part(io.in, io.out, io.dout, io.din,
                                       detail::add_then<T, Ep>{dx_.data(), In, io.din_ep}));
            }
        }

    private:
        /// h = s · x Aᵀ, then y += h Bᵀ, over n rows.
        void adapt(const T* params, const T* x, T* out, std::size_t n) {
            const T* a = params + a_offset;
            const T* b = params + b_offset;
            Exec::template gemm<trans::n, trans::t>(n, Rank, In, x, In, a, In, h_.data(), Rank, false,
                                                    detail::scale_by<T>{static_cast<T>(Config::scaling)});
            Exec::template gemm<trans::n, trans::t>(n, Out, Rank, static_cast<const T*>(h_.data()), Rank, b, Rank, out,
                                                    Out, true);
        }

        base_node base_;
        [[no_unique_address]] std::conditional_t<drops, drop_node, graph::no_cache<T>> drop_{};
        typename Exec::template buffer<T> h_{rows_held * Rank};
        [[no_unique_address]] graph::cache_if<backward_needed, T, Exec> g_{rows * Rank};
        [[no_unique_address]] graph::cache_if<need_dx, T, Exec> dx_{rows * In};
        [[no_unique_address]] graph::cache_if<drops && backward_needed, T, Exec> xd_{rows * In};
    };
};

}  // namespace ctdl::nn

namespace ctdl {

/// Named after the mistake, with the target in its name.
template <fixed_string Target, std::size_t Matches>
struct with_lora_target_must_name_a_part {
    static_assert(Matches > 0, "with_lora: no part's path ends in this target (a target is a part's state_dict "
                               "path, or its last levels, such as \"attn.c_attn\" or \"c_proj\")");
    static constexpr bool value = Matches > 0;
};

namespace lora::detail {

template <class L>
inline constexpr bool is_linear_layer = requires {
    L::in_features;
    L::out_features;
    L::layout;
    L::has_bias;
    requires std::is_same_v<L, nn::linear<L::in_features, L::out_features, L::has_bias, L::layout>>;
};

template <fixed_string Path, fixed_string... Targets>
inline constexpr bool targeted = (graph::path_ends_with(Path.view(), Targets.view()) || ...);

/// Adapts the targeted linear parts and freezes every other part with parameters.
template <class Config, fixed_string... Targets>
struct adapt_rule {
    static constexpr bool counts_inside_frozen = false;
    template <class L, fixed_string Path>
    static auto on() {
        if constexpr (targeted<Path, Targets...>) {
            // (A part that is not a linear layer is refused once, by the check's own class.)
            if constexpr (!lora_base_must_be_a_linear_layer<L>::value) return graph::replace<L>{};
            else return graph::replace<nn::lora<L, Config>>{};
        } else {
            return graph::descend{};
        }
    }
    template <class L, fixed_string>
    using leaf = std::conditional_t<(L::parameter_count > 0), frozen<L>, L>;
};

template <class A, class Config, fixed_string... Targets>
struct with_lora {
    static constexpr bool found =
        (with_lora_target_must_name_a_part<Targets, graph::rewrite<A, adapt_rule<Config, Targets>>::matches>::value && ...);
    static auto make() {
        if constexpr (found) return std::type_identity<typename graph::rewrite<A, adapt_rule<Config, Targets...>>::type>{};
        else return std::type_identity<A>{};
    }
    using type = typename decltype(make())::type;
};

}  // namespace lora::detail

/// A with LoRA adapters on the parts its targets name, every other parameter frozen (above).
template <class A, class Config, fixed_string... Targets>
    requires(sizeof...(Targets) > 0)
using with_lora = typename lora::detail::with_lora<A, Config, Targets...>::type;

}  // namespace ctdl
