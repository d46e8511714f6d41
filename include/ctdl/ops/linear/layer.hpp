#pragma once
// linear<In, Out, Bias, Layout>: y = x Wᵀ + b, over the last axis of its input.
//
// Parameters, in PyTorch's layout: weight [Out, In], then bias [Out]. Initialised as
// torch.nn.Linear does: W, b ~ U(-1/√In, 1/√In).
//
// conv1d<In, Out> = linear<In, Out, true, weight_layout::in_out>: transformers' Conv1D
// (GPT-2's projections), y = x W + b with weight [In, Out], then bias [Out]; initialised as
// transformers initialises GPT-2's: W ~ N(0, 0.02²), b = 0. The same op with the other
// transposes: forward y = x W (gemm n·n), dW = Xᵀ dZ (gemm t·n, [In, Out]), dX = dZ Wᵀ
// (gemm n·t); a frozen small-batch pack transposes W once when it is made (cpu.hpp).
//
// Forward is the linear op (ops/linear/kernels.hpp): one GEMM, with the bias and any
// following pointwise chain (relu, gelu...) in its epilogue (math.hpp), or, frozen at a
// batch the policy packs weights for, a GEMM from a packed weight (cpu.hpp). Backward, from dZ (the gradient at the GEMM's output):
//   dW = dZᵀ X      (one GEMM)           db = Σ_rows dZ    (one column reduction)
//   dX = dZ W       (one GEMM, whose epilogue applies the upstream layer's activation
//                    derivative, so no separate pass is needed for it)
// dZ itself arrives already multiplied by this layer's chain derivative: the layer after
// it folded that into its own dX GEMM (see dout_transform).
#include <cstddef>
#include <type_traits>

#include "../../core/init.hpp"
#include "../../core/random.hpp"
#include "../../core/shape.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/activation.hpp"
#include "../../nn/layer.hpp"
#include "../../nn/pointwise.hpp"
#include "cpu.hpp"  // kernel<ops::linear_forward, cpu>: visible wherever launch instantiates it
#include "frozen_packs.hpp"
#include "kernels.hpp"
#include "layout.hpp"
#include "math.hpp"

namespace ctdl::nn {

template <std::size_t In, std::size_t Out, bool Bias = true, weight_layout Layout = weight_layout::out_in>
struct linear;

/// transformers' Conv1D<In, Out>: weight [In, Out], y = x W + b.
template <std::size_t In, std::size_t Out>
using conv1d = linear<In, Out, true, weight_layout::in_out>;

}  // namespace ctdl::nn

namespace ctdl {

/// Checked in a class whose name carries the layer and the shape it was given, by the
/// layer's own predicate (`accepts`, also asked by ctdl::accepts: core/concepts.hpp).
template <class Layer, shape_like Input>
struct linear_input_features_must_match {
    static_assert(Input::rank >= 1, "linear: the input must have at least one axis (its features)");
    static_assert(Input::rank < 1 || Layer::template accepts<Input>,
                  "linear: the input's last extent must equal the layer's input features (In)");
    using type = with_last<Input, Layer::out_features>;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t In, std::size_t Out, bool Bias, weight_layout Layout>
struct linear {
    static_assert(In > 0 && Out > 0, "linear: In and Out must be at least 1");
    static constexpr std::size_t in_features = In, out_features = Out;
    static constexpr bool has_bias = Bias;
    static constexpr weight_layout layout = Layout;
    static constexpr bool in_out = Layout == weight_layout::in_out;
    static constexpr std::size_t parameter_count = Out * In + (Bias ? Out : 0);
    static constexpr std::size_t trainable_parameter_count = parameter_count;
    /// A pointwise chain after this layer is fused into its GEMM epilogue.
    static constexpr bool fuses_pointwise = true;

    /// The shapes it takes: [..., In].
    template <shape_like S>
    static constexpr bool accepts = S::rank >= 1 && S::extents[S::rank - 1] == In;
    template <shape_like S>
    using output_shape = typename linear_input_features_must_match<linear, S>::type;

    template <class V>
    static constexpr void visit_parameters(V& v, std::size_t offset) {
        if constexpr (in_out) v.param("weight", offset, {In, Out});
        else v.param("weight", offset, {Out, In});
        if constexpr (Bias) v.param("bias", offset + Out * In, {Out});
    }

    /// As torch.nn.Linear.reset_parameters: U(-1/√In, 1/√In) for weight and bias; in_out
    /// (conv1d) as transformers' GPT-2: N(0, 0.02²) and zeros. Each parameter draws from the
    /// stream numbered by its offset in the model's flat buffer.
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        if constexpr (in_out) {
            init::normal(tensor_view<T, shape<In, Out>>(params + offset), random_stream(s, offset), 0.0, 0.02);
            init::zeros(tensor_view<T, shape<Out>>(params + offset + Out * In));
            return;
        }
        init::linear_weight(tensor_view<T, shape<Out, In>>(params + offset), random_stream(s, offset), In);
        if constexpr (Bias)
            init::linear_bias(tensor_view<T, shape<Out>>(params + offset + Out * In),
                              random_stream(s, offset + Out * In), In);
    }

    template <class Ctx, class Chain = chain<>>
    struct node;
};

template <std::size_t In, std::size_t Out, bool Bias, weight_layout Layout>
template <class Ctx, class Chain>
struct linear<In, Out, Bias, Layout>::node : graph::node_base<Ctx, parameter_count> {
    using base = graph::node_base<Ctx, parameter_count>;
    using typename base::T, typename base::Exec, typename base::in_shape;
    using base::rows, base::need_dw, base::need_dx, base::backward_needed;
    using out_shape = output_shape<in_shape>;
    // The backward pass multiplies by the chain's derivative at z, the GEMM's raw output:
    // unless it can be read off y, the forward epilogue computes it (with the chain's value,
    // sharing their work) and keeps it.
    static constexpr bool keep_dz = backward_needed && !is_empty_chain<Chain> && !Chain::derivative_from_output;

    /// The linear op under this policy (ops/linear/kernels.hpp).
    using op = kernel<ops::linear_forward, Exec>;
    /// Frozen, at a batch the policy packs weights for: the weight is packed once
    /// (pack_weights, called by the model when its parameters changed) and y is computed
    /// from the pack, with the same result bit for bit.
    /// In a decoding session (whose rows are a run-time count), whenever the policy packs at
    /// a single row: a decoding step has one row per sequence.
    /// In a bf16 decoding session (Ctx::packed_type = bf16) the pack holds bf16 and every
    /// decoding pass runs from it, whatever its rows.
    using P = typename Ctx::packed_type;
    static constexpr bool packs = !backward_needed && ops::linear_packs<Exec, T, Layout, P>(Ctx::decode ? 1 : rows);
    /// Frozen on a gradient path (a LoRA base layer, a frozen layer with training before it):
    /// the forward and dX GEMMs run from packs of W made once per parameter change, equal bit
    /// for bit to the GEMMs on W (frozen_packs.hpp).
    using frozen_packs = ops::frozen_weight_packs<Exec, T, Layout, rows, Out, In, need_dx && !need_dw && !Ctx::decode,
                                                  true>;

    /// y = chain(z), z = acc + b; chain'(z) kept when the backward pass needs it.
    using forward_epilogue = ops::linear_math::forward_epilogue<T, Bias, Chain>;

    void forward(const T* params, const T* in, T* out, bool store) {
        const T* w = params + Ctx::param_offset;
        T* dz = store ? dz_.data() : nullptr;  // null unless keep_dz
        if constexpr (packs) {
            if (packed_ && op::use_packed()) {
                op::run_packed(rows, Out, In, in, packed_, out, forward_epilogue{w + Out * In, nullptr, Out});
                return;
            }
        }
        const forward_epilogue ep{w + Out * In, dz, Out};
        if (frozen_.forward(in, out, ep)) return;
        ops::run_linear_forward<Layout, Exec>(rows, Out, In, in, w, out, ep);
    }

    /// The same over the run-time rows of a decoding step.
    void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
        const T* w = params + Ctx::param_offset;
        if constexpr (packs) {
            // (Whatever the thread count: a decoding step reads each weight once per token,
            // and the packed stream measured faster on 1 and 2 threads: bench_decode.)
            if (packed_ && op::template packs<T, P>(d.rows)) {
                op::run_packed(d.rows, Out, In, in, packed_, out, forward_epilogue{w + Out * In, nullptr, Out});
                return;
            }
        }
        ops::run_linear_forward<Layout, Exec>(d.rows, Out, In, in, w, out, forward_epilogue{w + Out * In, nullptr, Out});
    }

    /// Whether this layer keeps a packed weight: the frozen small-batch one, or the two of a
    /// frozen weight on a gradient path (one constrained member each: nvcc's front end
    /// crashed on pairs of members that differ only in their constraints).
    static constexpr bool keeps_pack = packs || frozen_packs::any;
    /// Elements of this layer's pack.
    static constexpr std::size_t packed_elements()
        requires keeps_pack
    {
        if constexpr (packs) return op::template packed_size<T, P>(Out, In);
        else return frozen_packs::elements();
    }
    /// (Re)packs this layer's weight from params into dst (packed_elements() elements, owned
    /// by the model, 64-byte aligned) and runs from there.
    void pack_weights(const T* params, P* dst)
        requires keeps_pack
    {
        if constexpr (packs) {
            if constexpr (in_out) op::template pack_in_out<T>(Out, In, params + Ctx::param_offset, dst);
            else op::template pack<T>(Out, In, params + Ctx::param_offset, dst);
            packed_ = dst;
        } else {
            static_assert(std::is_same_v<P, T>, "frozen-weight packs hold T");
            frozen_.pack(params + Ctx::param_offset, dst);
        }
    }
    /// Drops the pack (packs.hpp: unpack_nodes): forward and backward read the parameters again.
    void unpack_weights()
        requires keeps_pack
    {
        if constexpr (packs) packed_ = nullptr;
        else frozen_.clear();
    }

    /// What the layer after this one applies to the gradient it hands back: × chain'(·).
    /// Without a backward pass there is no gradient to transform (and no z kept).
    auto dout_transform(const T*, const T* out) const {
        if constexpr (is_empty_chain<Chain> || !backward_needed) return epilogue::none{};
        else if constexpr (Chain::derivative_from_output)
            return detail::chain_derivative_epilogue<Chain, T, true>{out, Out};
        else
            return detail::kept_derivative_epilogue<T>{dz_.data(), Out};
    }

    /// io.dout is dZ, the gradient at the GEMM's output.
    template <class Ep>
    void backward(const graph::backward_io<T, Ep>& io) {
        const T* dz = io.dout;
        if constexpr (need_dw) {
            T* gw = io.grads + Ctx::grad_offset;
            if constexpr (in_out)  // dW [In, Out] = Xᵀ dZ
                Exec::template gemm<trans::t, trans::n>(In, Out, rows, io.in, In, dz, Out, gw, Out, io.accumulate);
            else  // dW [Out, In] = dZᵀ X
                Exec::template gemm<trans::t, trans::n>(Out, In, rows, dz, Out, io.in, In, gw, In, io.accumulate);
            if constexpr (Bias) Exec::sum_cols(rows, Out, dz, gw + Out * In, io.accumulate);
        }
        if constexpr (need_dx)
            if (frozen_.backward(dz, io.din, io.din_ep)) return;
        if constexpr (need_dx && in_out)  // dX = dZ Wᵀ, W [In, Out]
            Exec::template gemm<trans::n, trans::t>(rows, In, Out, dz, Out, io.params + Ctx::param_offset, Out, io.din,
                                                    In, false, io.din_ep);
        else if constexpr (need_dx)  // dX = dZ W, W [Out, In]
            Exec::template gemm<trans::n, trans::n>(rows, In, Out, dz, Out, io.params + Ctx::param_offset, In, io.din,
                                                    In, false, io.din_ep);
    }

private:
    [[no_unique_address]] graph::cache_if<keep_dz, T, Exec> dz_{rows * Out};
    [[no_unique_address]] std::conditional_t<packs, const P*, std::nullptr_t> packed_{};
    [[no_unique_address]] frozen_packs frozen_{};
};

}  // namespace ctdl::nn
