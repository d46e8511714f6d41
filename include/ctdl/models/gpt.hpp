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

namespace detail {
template <std::size_t N>
struct freeze_first_of {
    template <class Seq>
    struct apply {
        using type = freeze_first<N, Seq>;
    };
};
}  // namespace detail

/// One pre-norm transformer block.
template <std::size_t D, std::size_t Heads, std::size_t Mlp>
struct gpt_block : nn::sequential<nn::residual<nn::layer_norm<D>, nn::causal_self_attention<D, Heads>>,
                                  nn::residual<nn::layer_norm<D>, nn::linear<D, Mlp>, nn::gelu_tanh, nn::linear<Mlp, D>>> {
};

/// The whole model: token ids [B, T] (T <= Ctx) -> logits [B, T, Vocab].
template <std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers,
          std::size_t Mlp = 4 * D>
struct gpt : nn::sequential<nn::embedding<Vocab, D>, nn::position_embedding<Ctx, D>,
                            nn::repeat<Layers, gpt_block<D, Heads, Mlp>>, nn::layer_norm<D>,
                            nn::linear<D, Vocab, false>> {
    /// The longest sequence it takes (a decoding session's default maximum: infer/decoder.hpp).
    static constexpr std::size_t context_length = Ctx;
};

/// G (a models::gpt) for fine-tuning with its token and position embeddings and its first
/// Blocks blocks frozen; parameter names unchanged, so G's snapshots load into it as they are.
template <class G, std::size_t Blocks>
using gpt_with_frozen_bottom = typename graph::detail::rewrite_part<
    graph::detail::sequential_of<with_frozen<G, "0", "1">>, 2, detail::freeze_first_of<Blocks>::template apply>::type;

}  // namespace ctdl::models
