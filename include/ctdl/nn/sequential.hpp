#pragma once
// sequential<L...>: the layers applied one after another, as torch.nn.Sequential (the
// parameters of layer i are named "i.weight", "i.bias", ..., those of a part
// nn::named<"wte", L> "wte.weight": nn/named.hpp). A sequential is itself a
// layer, so graphs nest.
//
// Before nodes are made, adjacent layers are fused at compile time (graph/fusion.hpp):
//   linear, P1, ..., Pk   ->  one GEMM whose epilogue adds the bias and applies P1..Pk
//   P1, ..., Pk           ->  one elementwise pass (a chain)
// where the P are pointwise layers (activations).
#include <algorithm>
#include <array>
#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../core/random.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../graph/fusion.hpp"
#include "../graph/decode.hpp"
#include "../graph/node_base.hpp"
#include "../graph/node_io.hpp"
#include "../ops/embedding/kernels.hpp"
#include "connect.hpp"
#include "layer.hpp"
#include "pointwise.hpp"

namespace ctdl {

/// Named after the mistake, with the part in its name.
template <class Part>
struct sequential_part_must_be_a_layer {
    static constexpr bool value = layer<Part>;
    static_assert(value, "sequential<L...>: every part must be a layer (parameter_count, trainable_parameter_count, "
                         "output_shape<S>, visit_parameters, initialize: ctdl::layer in core/concepts.hpp)");
};

}  // namespace ctdl

namespace ctdl::nn {

template <class... L>
struct sequential;

namespace detail {

/// Shapes through the steps: the input of step i is shapes[i].
template <class S, class Steps>
struct shape_flow;
template <class S>
struct shape_flow<S, graph::type_list<>> {
    using out = S;
};
template <class S, class First, class... Rest>
struct shape_flow<S, graph::type_list<First, Rest...>> {
    using next = shape_flow<typename graph::step_output<First, S>::type, graph::type_list<Rest...>>;
    using out = typename next::out;
};

template <class... L>
inline constexpr std::size_t sum_parameters = (std::size_t{0} + ... + L::parameter_count);
template <class... L>
inline constexpr std::size_t sum_trainable = (std::size_t{0} + ... + L::trainable_parameter_count);

}  // namespace detail

template <class... L>
struct sequential {
    static_assert(sizeof...(L) > 0, "sequential: give at least one layer");
    // (A sequential with a part that is not a layer is the refused one below.)
    static_assert((sequential_part_must_be_a_layer<L>::value && ...));

    /// The shapes it takes: each part takes what the one before it gives (ctdl::accepts;
    /// pointwise parts take any shape, so the fused steps take the same).
    template <shape_like S>
    static constexpr bool accepts = ctdl::detail::flow_accepts<S, L...>::value;

    using layers = std::tuple<L...>;
    static constexpr std::size_t parameter_count = detail::sum_parameters<L...>;
    static constexpr std::size_t trainable_parameter_count = detail::sum_trainable<L...>;

    /// Connections known from the types alone are checked here (nn/connect.hpp), when the
    /// type is used. A broken one is reported once; the sequential then passes its input
    /// through unchanged, so no further error follows from it.
    static constexpr bool connects = detail::connected<L...>();
    static constexpr detail::connection features = detail::trace_connections<L...>();
    static constexpr std::size_t in_features = features.in_features;
    static constexpr std::size_t out_features = features.out_features == detail::same_features ? 0 : features.out_features;
    static constexpr bool keeps_features = features.out_features == detail::same_features;

    using steps = std::conditional_t<connects, graph::fusion_plan<L...>, graph::type_list<graph::step<0, void, chain<>>>>;

    template <shape_like S>
    using output_shape = typename detail::shape_flow<S, steps>::out;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        std::size_t i = 0;
        // A part that names itself (nn::named) takes its name instead of its index.
        ((names_itself<L> ? L::visit_parameters(v, offset)
                          : (v.push(i), L::visit_parameters(v, offset), v.pop()),
          offset += L::parameter_count, ++i),
         ...);
    }

    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        ((L::initialize(params, s, offset), offset += L::parameter_count), ...);
    }

    template <class Ctx>
    struct node;
};

namespace detail {
/// What stands for the parts of a refused sequential (below): the identity, as a pointwise
/// layer, so that the refused sequential is still a layer and its use adds no error.
struct refused_part : parameter_free {
    static constexpr bool pointwise = true;
    static constexpr bool derivative_from_output = true;
    template <class T>
    CTDL_HD static T f(T x) { return x; }
    template <class T>
    CTDL_HD static T df(T) { return T(1); }
    template <class T>
    CTDL_HD static T df_from_output(T) { return T(1); }
};
}  // namespace detail

/// A sequential with a part that is not a layer: says so once per such part
/// (sequential_part_must_be_a_layer<Part>), then passes its input through unchanged.
template <class... L>
    requires(sizeof...(L) > 0 && !(layer<L> && ...))
struct sequential<L...> : sequential<detail::refused_part> {
    // (Instantiated, not tested: each check says its own sentence, and nothing more is said.)
    static_assert((sizeof(sequential_part_must_be_a_layer<L>) + ...) > 0);
};

namespace detail {

template <class Ctx, class Steps, class Idx>
struct sequential_nodes;

template <class Ctx, class... Steps, std::size_t... I>
struct sequential_nodes<Ctx, graph::type_list<Steps...>, std::index_sequence<I...>> {
    static constexpr std::size_t n = sizeof...(Steps);
    static constexpr std::array<std::size_t, n> params{Steps::parameter_count...};
    static constexpr std::array<std::size_t, n> trainable{Steps::trainable_parameter_count...};
    static constexpr std::size_t param_before(std::size_t i) {
        std::size_t s = 0;
        for (std::size_t j = 0; j < i; ++j) s += params[j];
        return s;
    }
    static constexpr std::size_t grad_before(std::size_t i) {
        std::size_t s = 0;
        for (std::size_t j = 0; j < i; ++j) s += trainable[j];
        return s;
    }

    // Input shapes of each step.
    template <std::size_t K, class S>
    struct input_of;
    template <class S>
    struct input_of<0, S> {
        using type = S;
    };
    template <std::size_t K, class S>
        requires(K > 0)
    struct input_of<K, S> {
        using prev_step = std::tuple_element_t<K - 1, std::tuple<Steps...>>;
        using type = typename graph::step_output<prev_step, typename input_of<K - 1, S>::type>::type;
    };

    // Step 0 reads the sequential's input (maybe token ids); the others read activations.
    template <std::size_t K>
    using ctx_of = typename Ctx::template child<
        typename input_of<K, typename Ctx::in_shape>::type, Ctx::param_offset + param_before(K),
        Ctx::grad_offset + grad_before(K), Ctx::need_dx || (!Ctx::frozen && grad_before(K) > 0), Ctx::frozen,
        std::conditional_t<K == 0, typename Ctx::input_type, typename Ctx::value_type>>;

    using tuple = std::tuple<typename graph::step_node<Steps, ctx_of<I>>::type...>;
};

}  // namespace detail

template <class... L>
template <class Ctx>
struct sequential<L...>::node {
    using T = typename Ctx::value_type;
    using Exec = typename Ctx::exec_type;
    using buffer = typename Exec::template buffer<T>;
    using in_shape = typename Ctx::in_shape;
    using out_shape = output_shape<in_shape>;
    using nodes_info =
        detail::sequential_nodes<Ctx, steps, std::make_index_sequence<graph::step_count<steps>>>;
    using nodes_type = typename nodes_info::tuple;
    static constexpr std::size_t n = std::tuple_size_v<nodes_type>;
    template <std::size_t K>
    using node_at = std::tuple_element_t<K, nodes_type>;

    /// Whether every step can decode (graph/decode.hpp).
    static constexpr bool decodes = [] {
        return []<std::size_t... K>(std::index_sequence<K...>) {
            return (decoding_node<node_at<K>, typename nodes_info::template ctx_of<K>> && ...);
        }(std::make_index_sequence<n>{});
    }();

    static constexpr bool backward_needed = [] {
        return []<std::size_t... K>(std::index_sequence<K...>) {
            return (node_at<K>::backward_needed || ...);
        }(std::make_index_sequence<n>{});
    }();

    /// A part writes gradients outside its own range (a tied head: graph/node_io.hpp).
    static constexpr bool writes_shared_gradients = [] {
        return []<std::size_t... K>(std::index_sequence<K...>) {
            return (graph::writes_shared_gradients<node_at<K>> || ...);
        }(std::make_index_sequence<n>{});
    }();
    /// The last step writes no gradient, so dout is dead once it has run (graph/node_io.hpp):
    /// backward_from reads io.dout in that step only.
    static constexpr bool output_gradient_dies_first =
        backward_needed && nodes_info::trainable[n - 1] == 0 && !graph::writes_shared_gradients<node_at<n - 1>>;

    /// Sizes of the n - 1 activations between the steps.
    static constexpr std::array<std::size_t, (n > 1 ? n - 1 : 1)> boundary_sizes = [] {
        std::array<std::size_t, (n > 1 ? n - 1 : 1)> s{};
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            ((s[K] = node_at<K>::out_shape::size), ...);
        }(std::make_index_sequence<n - 1>{});
        return s;
    }();
    static constexpr std::size_t max_boundary = [] {
        std::size_t m = 0;
        for (auto v : boundary_sizes) m = v > m ? v : m;
        return m;
    }();
    /// In a decoding session: the widest boundary row times the rows a step may have.
    static constexpr std::size_t decode_boundary = [] {
        std::size_t m = 0;
        [&]<std::size_t... K>(std::index_sequence<K...>) {
            ((m = std::max(m, last_extent<typename node_at<K>::out_shape>)), ...);
        }(std::make_index_sequence<n>{});
        return m * Ctx::decode_capacity;
    }();
    // When training, every activation between steps is kept (it is a step's input or output
    // that its backward reads); for inference two buffers are used in turn.
    static constexpr std::size_t stored = n == 1 ? 0 : backward_needed ? n - 1 : (n > 2 ? 2 : 1);

    node() {
        for (std::size_t k = 0; k < stored; ++k)
            acts_[k] = buffer(backward_needed ? boundary_sizes[k] : Ctx::decode ? decode_boundary : max_boundary);
        // Step k (k >= 1) writes the gradient at its input into grad_[k % 2].
        if constexpr (backward_needed && n > 1) {
            grad_[1] = buffer(max_boundary);
            if constexpr (n > 2) grad_[0] = buffer(max_boundary);
        }
    }

    template <class F>
    void visit_children(F& f) {
        std::apply([&](auto&... nd) { (for_each_node(nd, f), ...); }, nodes_);
    }

    /// The activation after step k (k < n - 1).
    T* act(std::size_t k) { return acts_[backward_needed ? k : k % 2].data(); }

    using In = typename Ctx::input_type;

    void forward(const T* params, const In* in, T* out, bool store) {
        forward_from<0>(params, in, out, store);
    }

    auto dout_transform(const In* in, const T* out) const {
        if constexpr (n == 1) return std::get<0>(nodes_).dout_transform(in, out);
        else return std::get<n - 1>(nodes_).dout_transform(const_cast<node*>(this)->act(n - 2), out);
    }

    template <class Ep>
    void backward(const graph::backward_io<T, Ep, In>& io) {
        static_assert(backward_needed || !Ctx::need_dx);
        backward_from<n - 1>(io, io.dout);
    }

    /// Every step over the rows of a decoding step. With keep, the last step runs only on
    /// the rows keep->rows lists (e.g. the last token of each sequence, for a language
    /// model's head), described by keep->d: the last step must then be row-wise.
    void decode(const T* params, const In* in, T* out, const graph::decode_rows& d,
                const graph::row_selection* keep = nullptr)
        requires(decodes)
    {
        decode_from<0>(params, in, out, d, keep);
    }

private:
    template <std::size_t K, class Src>
    void decode_from(const T* params, const Src* in, T* out, const graph::decode_rows& d,
                     const graph::row_selection* keep) {
        if constexpr (K + 1 == n) {
            if (keep) {
                constexpr std::size_t width = last_extent<typename nodes_info::template ctx_of<K>::in_shape>;
                keep_rows(static_cast<const T*>(in), width, *keep);
                std::get<K>(nodes_).decode(params, static_cast<const Src*>(kept_.data()), out, keep->d);
            } else {
                std::get<K>(nodes_).decode(params, in, out, d);
            }
        } else {
            T* dst = act(K);
            std::get<K>(nodes_).decode(params, in, dst, d);
            decode_from<K + 1>(params, static_cast<const T*>(dst), out, d, keep);
        }
    }
    void keep_rows(const T* in, std::size_t width, const graph::row_selection& keep) {
        if (kept_.size() == 0) kept_ = buffer(decode_boundary);
        Exec::for_each_index(keep.d.rows * width, ops::embedding_detail::gather<T, std::int32_t>{keep.rows, in,
                                                                                                 kept_.data(), width});
    }

    template <std::size_t K, class Src>
    void forward_from(const T* params, const Src* in, T* out, bool store) {
        T* dst = K + 1 == n ? out : act(K);
        std::get<K>(nodes_).forward(params, in, dst, store);
        if constexpr (K + 1 < n) forward_from<K + 1>(params, static_cast<const T*>(dst), out, store);
    }

    // Step K gets the gradient at its output (dout) and writes the gradient at its input
    // into the other gradient buffer, with step K-1's derivative as the epilogue; step 0
    // writes the sequential's own din.
    template <std::size_t K, class Ep>
    void backward_from(const graph::backward_io<T, Ep, In>& io, const T* dout) {
        auto& nd = std::get<K>(nodes_);
        if constexpr (node_at<K>::backward_needed) {
            const T* k_out = K + 1 == n ? io.out : act(K);
            if constexpr (K == 0) {
                nd.backward(io.part(io.in, k_out, dout, io.din, io.din_ep));
                if (io.ready) (*io.ready)(nodes_info::template ctx_of<K>::grad_offset);
            } else {
                const T* k_in = act(K - 1);
                T* dprev = grad_[K % 2].data();
                auto ep = [&] {
                    if constexpr (K == 1) return std::get<0>(nodes_).dout_transform(io.in, k_in);
                    else return std::get<K - 1>(nodes_).dout_transform(static_cast<const T*>(act(K - 2)), k_in);
                }();
                nd.backward(io.part(k_in, k_out, dout, dprev, ep));
                if (io.ready) (*io.ready)(nodes_info::template ctx_of<K>::grad_offset);  // graph/node_io.hpp
                backward_from<K - 1>(io, static_cast<const T*>(dprev));
            }
        }
    }

    nodes_type nodes_;
    /// A decoding step's kept rows before the last step: made on the first decode with keep
    /// (the root graph of a session only).
    buffer kept_;
    std::array<buffer, (stored > 0 ? stored : 1)> acts_;
    std::array<buffer, 2> grad_;
};

}  // namespace ctdl::nn
