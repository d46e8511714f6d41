#pragma once
// ctdl::models::gpt: a GPT-style decoder-only transformer, as named types so that compiler
// messages stay short.
//
//   token embedding -> + learned positions -> Layers × block -> layer norm -> LM head
//   block: x + attn(ln1(x)), then x + mlp(ln2(x)), mlp = linear(D, M) · gelu · linear(M, D)
#include <cstddef>

#include "../graph/freeze.hpp"
#include "../nn/activation.hpp"
#include "../nn/attention.hpp"
#include "../nn/embedding.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"
#include "../nn/residual.hpp"
#include "../nn/sequential.hpp"

namespace ctdl::models {

/// One pre-norm transformer block.
template <std::size_t D, std::size_t Heads, std::size_t Mlp>
struct gpt_block : nn::sequential<nn::residual<nn::layer_norm<D>, nn::causal_self_attention<D, Heads>>,
                                  nn::residual<nn::layer_norm<D>, nn::linear<D, Mlp>, nn::gelu_tanh, nn::linear<Mlp, D>>> {
};

/// The whole model: token ids [B, T] (T <= Ctx) -> logits [B, T, Vocab].
template <std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers,
          std::size_t Mlp = 4 * D>
struct gpt;

/// A GPT's graph (Graph, a sequential) with what models::gpt states besides: its context
/// length. What gpt<...> is after a rewrite (freezing parts, adapters: graph/rewrite.hpp).
template <class Graph, std::size_t Ctx>
struct gpt_graph : Graph {
    /// The longest sequence it takes (a decoding session's default maximum: infer/decoder.hpp).
    static constexpr std::size_t context_length = Ctx;
    template <class Seq>
    using rewritten = gpt_graph<Seq, Ctx>;
};

template <std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers, std::size_t Mlp>
struct gpt : gpt_graph<nn::sequential<nn::embedding<Vocab, D>, nn::position_embedding<Ctx, D>,
                                      nn::repeat<Layers, gpt_block<D, Heads, Mlp>>, nn::layer_norm<D>,
                                      nn::linear<D, Vocab, false>>,
                       Ctx> {};

namespace detail {
/// Freezes a GPT's embeddings ("0", "1") and its first Blocks blocks ("2.0" ...).
template <std::size_t Blocks>
struct freeze_bottom_rule {
    static constexpr bool counts_inside_frozen = true;
    template <class L, fixed_string Path>
    static auto on() {
        if constexpr (Path.view().empty()) return graph::descend{};
        else if constexpr (Path.view() == "0" || Path.view() == "1")
            return graph::replace<typename graph::detail::freeze_part<L>::type>{};
        else if constexpr (Path.view() == "2") return graph::replace<freeze_first<Blocks, L>>{};
        else return graph::keep{};
    }
    template <class L, fixed_string>
    using leaf = L;
};
}  // namespace detail

/// G (a models::gpt) for fine-tuning with its token and position embeddings and its first
/// Blocks blocks frozen; parameter names unchanged, so G's snapshots load into it as they are.
template <class G, std::size_t Blocks>
using gpt_with_frozen_bottom = typename graph::rewrite<G, detail::freeze_bottom_rule<Blocks>>::type;

}  // namespace ctdl::models
