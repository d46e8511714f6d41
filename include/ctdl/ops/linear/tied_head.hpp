#pragma once
// tied_head<Vocab, D, ParamBack, GradBack>: logits = x Eᵀ over the last axis of its input,
// where E [Vocab, D] is the weight of a token embedding earlier in the same model (GPT-2's LM
// head, tied to transformer.wte): one parameter, used twice.
//
// The head owns no parameter. Its node finds E at ParamBack elements before its own place in
// the model's parameter buffer, and E's gradient at GradBack elements before its own place in
// the gradient buffer (models::gpt2 computes both from the parameter counts in between). The
// head's backward runs before the embedding's: it writes (or, accumulating, adds) its part of
// dE = dYᵀ X, and the embedding, declared tied (embedding<V, D, true>), always adds its
// scatter to it, so dE is the sum of both uses. Forward is the linear op on E (the same GEMM
// as linear<D, Vocab, false>, packed when frozen at a small batch); dX = dY E.
//
// Trains = false says that E is frozen: the head then computes no dE (only dX, where
// something before it trains). It refuses a context in which it cannot reach E: fewer parameters before it than ParamBack,
// or, when it trains, fewer gradients before it than GradBack (the embedding frozen while the
// head is not).
#include <cstddef>
#include <type_traits>

#include "../../core/shape.hpp"
#include "../../exec/kernel.hpp"
#include "../../graph/node_base.hpp"
#include "../../nn/layer.hpp"
#include "../../nn/pointwise.hpp"
#include "cpu.hpp"
#include "frozen_packs.hpp"
#include "kernels.hpp"
#include "math.hpp"

namespace ctdl {

template <class Layer, shape_like Input>
struct tied_head_input_features_must_match {
    static_assert(Layer::template accepts<Input>,
                  "tied_head<Vocab, D, ...>: the input's last extent must equal the embedding width D");
    using type = with_last<Input, Layer::out_features>;
};

/// Named after the mistake: the head sits where the embedding it reads cannot be.
template <class Layer, std::size_t Before, std::size_t Back>
struct tied_head_must_come_after_its_embedding {
    static_assert(Before >= Back, "tied_head: its embedding's weight (ParamBack parameters, or GradBack gradients, "
                                  "before it) is not before it in the model: the head must follow its embedding, "
                                  "and train only when the embedding trains");
    static constexpr bool value = Before >= Back;
};

}  // namespace ctdl

namespace ctdl::nn {

template <std::size_t Vocab, std::size_t D, std::size_t ParamBack, std::size_t GradBack, bool Trains = true>
struct tied_head {
    static_assert(Vocab > 0 && D > 0, "tied_head: Vocab and D must be at least 1");
    static constexpr std::size_t in_features = D, out_features = Vocab;
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
    static constexpr std::size_t param_back = ParamBack, grad_back = GradBack;

    template <shape_like S>
    static constexpr bool accepts = S::rank >= 1 && S::extents[S::rank - 1] == D;
    template <shape_like S>
    using output_shape = typename tied_head_input_features_must_match<tied_head, S>::type;

    template <class V>
    static constexpr void visit_parameters(V&, std::size_t) {}
    template <class T, class Seed>
    static void initialize(T*, Seed, std::size_t) {}

    template <class Ctx>
    struct node : graph::node_base<Ctx> {
        using base = graph::node_base<Ctx>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::rows, base::need_dx;
        using out_shape = output_shape<in_shape>;
        /// dE: whenever the head trains (E is then trainable too: checked below). Trains is
        /// false where E is frozen (models::gpt2 with its wte frozen).
        static constexpr bool need_de = Trains && !Ctx::frozen;
        /// dE lies in the embedding's range, not the head's (graph/node_io.hpp).
        static constexpr bool writes_shared_gradients = need_de;
        static constexpr bool backward_needed = need_de || need_dx;
        static constexpr bool reaches =
            tied_head_must_come_after_its_embedding<tied_head, Ctx::param_offset, ParamBack>::value &&
            (!need_de || tied_head_must_come_after_its_embedding<tied_head, Ctx::grad_offset, GradBack>::value);
        static constexpr std::size_t e_offset = reaches ? Ctx::param_offset - ParamBack : 0;
        static constexpr std::size_t de_offset = reaches && need_de ? Ctx::grad_offset - GradBack : 0;

        using op = kernel<ops::linear_forward, Exec>;
        using forward_epilogue = ops::linear_math::forward_epilogue<T, false, chain<>>;
        using P = typename Ctx::packed_type;  // (T, or bf16 in a bf16 decoding session: as linear)
        static constexpr bool packs =
            !backward_needed && ops::linear_packs<Exec, T, nn::weight_layout::out_in, P>(Ctx::decode ? 1 : rows);
        /// E frozen with training before the head (LoRA): its GEMMs run from packs of E made
        /// once per parameter change (frozen_packs.hpp, as linear's).
        using frozen_packs = ops::frozen_weight_packs<Exec, T, nn::weight_layout::out_in, rows, Vocab, D,
                                                      need_dx && !need_de && !Ctx::decode, true>;

        void forward(const T* params, const T* in, T* out, bool) {
            const T* e = params + e_offset;
            if constexpr (packs) {
                if (packed_ && op::use_packed()) {
                    op::run_packed(rows, Vocab, D, in, packed_, out, forward_epilogue{nullptr, nullptr, Vocab});
                    return;
                }
            }
            const forward_epilogue ep{nullptr, nullptr, Vocab};
            if (frozen_.forward(in, out, ep)) return;
            op::run(rows, Vocab, D, in, e, out, ep);
        }
        /// The same over the run-time rows of a decoding step.
        void decode(const T* params, const T* in, T* out, const graph::decode_rows& d) {
            const T* e = params + e_offset;
            if constexpr (packs) {
                if (packed_ && op::template packs<T, P>(d.rows)) {  // (as linear's decode)
                    op::run_packed(d.rows, Vocab, D, in, packed_, out, forward_epilogue{nullptr, nullptr, Vocab});
                    return;
                }
            }
            op::run(d.rows, Vocab, D, in, e, out, forward_epilogue{nullptr, nullptr, Vocab});
        }
        /// One constrained member each, as in linear (layer.hpp).
        static constexpr bool keeps_pack = packs || frozen_packs::any;
        static constexpr std::size_t packed_elements()
            requires keeps_pack
        {
            if constexpr (packs) return op::template packed_size<T, P>(Vocab, D);
            else return frozen_packs::elements();
        }
        void pack_weights(const T* params, P* dst)
            requires keeps_pack
        {
            if constexpr (packs) {
                op::template pack<T>(Vocab, D, params + e_offset, dst);
                packed_ = dst;
            } else {
                static_assert(std::is_same_v<P, T>, "frozen-weight packs hold T");
                frozen_.pack(params + e_offset, dst);
            }
        }
        /// Drops the pack (packs.hpp: unpack_nodes): forward and backward read the parameters again.
        void unpack_weights()
            requires keeps_pack
        {
            if constexpr (packs) packed_ = nullptr;
            else frozen_.clear();
        }

        epilogue::none dout_transform(const T*, const T*) const { return {}; }

        template <class Ep>
        void backward(const graph::backward_io<T, Ep>& io) {
            if constexpr (need_de)  // dE [Vocab, D] = dYᵀ X: written first, the embedding adds its part
                Exec::template gemm<trans::t, trans::n>(Vocab, D, rows, io.dout, Vocab, io.in, D,
                                                        io.grads + de_offset, D, io.accumulate);
            if constexpr (need_dx)
                if (frozen_.backward(io.dout, io.din, io.din_ep)) return;
            if constexpr (need_dx)  // dX = dY E
                Exec::template gemm<trans::n, trans::n>(rows, D, Vocab, io.dout, Vocab, io.params + e_offset, D,
                                                        io.din, D, false, io.din_ep);
        }

    private:
        [[no_unique_address]] std::conditional_t<packs, const P*, std::nullptr_t> packed_{};
        [[no_unique_address]] frozen_packs frozen_{};
    };
};

}  // namespace ctdl::nn
