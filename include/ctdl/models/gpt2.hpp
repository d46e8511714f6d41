#pragma once
// ctdl::models::gpt2<Vocab, Ctx, D, Heads, Layers>: GPT-2 as transformers' GPT2LMHeadModel
// computes it, with its parameter names and layouts, so that a model.safetensors written by
// save_pretrained loads as it is and a ctdl snapshot loads with from_pretrained.
//
//   token ids [B, T] (T <= Ctx) -> wte + wpe -> Layers × block -> ln_f -> logits = x wteᵀ
//   block:  x + attn(ln_1(x)),  then x + mlp(ln_2(x))
//   attn:   c_attn (Conv1D D -> 3D: [q | k | v]), causal attention (Heads heads, scale
//           1/√(D/Heads)), c_proj (Conv1D D -> D)
//   mlp:    c_fc (Conv1D D -> 4D), GELU (tanh form: gelu_new), c_proj (Conv1D 4D -> D)
//   layer norms eps 1e-5; the LM head is tied to wte: one parameter, used twice, its gradient
//   the sum of both uses (nn::tied_head).
//
// Parameters, in transformers' state_dict order:
//   transformer.wte.weight [Vocab, D], transformer.wpe.weight [Ctx, D],
//   transformer.h.{i}.ln_1.{weight,bias}, .attn.c_attn.weight [D, 3D], .attn.c_attn.bias,
//   .attn.c_proj.weight [D, D], .attn.c_proj.bias, .ln_2.*, .mlp.c_fc.weight [D, 4D], .mlp.c_fc.bias,
//   .mlp.c_proj.weight [4D, D], .mlp.c_proj.bias, transformer.ln_f.{weight,bias}
// (Conv1D weights [in, out]; lm_head.weight is wte itself and is not stored.)
//
// Initialised as transformers initialises GPT-2 (initializer_range 0.02): Conv1D weights and
// both embeddings N(0, 0.02²), c_proj weights N(0, (0.02 / √(2 Layers))²), biases 0, layer
// norms 1 and 0; each tensor from the random stream numbered by its offset.
//
// Loading (io/snapshot.hpp asks the architecture): the buffers some transformers versions
// store (transformer.h.{i}.attn.bias, .attn.masked_bias: the causal mask) are ignored, and an
// lm_head.weight, when the file has one, must equal transformer.wte.weight exactly.
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "../core/init.hpp"
#include "../core/random.hpp"
#include "../graph/rewrite.hpp"
#include "../nn/activation.hpp"
#include "../nn/attention.hpp"
#include "../nn/embedding.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"
#include "../nn/named.hpp"
#include "../nn/residual.hpp"
#include "../nn/sequential.hpp"
#include "../ops/linear/tied_head.hpp"

namespace ctdl::models {

/// GPT2Attention: c_attn, the causal attention core, c_proj.
template <std::size_t D, std::size_t Heads>
using gpt2_attention = nn::sequential<nn::named<"c_attn", nn::conv1d<D, 3 * D>>, nn::causal_attention<D, Heads>,
                                      nn::named<"c_proj", nn::conv1d<D, D>>>;

/// GPT2MLP: c_fc, gelu_new, c_proj (the GELU runs in c_fc's GEMM epilogue).
template <std::size_t D>
using gpt2_mlp =
    nn::sequential<nn::named<"c_fc", nn::conv1d<D, 4 * D>>, nn::gelu_tanh, nn::named<"c_proj", nn::conv1d<4 * D, D>>>;

/// GPT2Block (pre-norm): x + attn(ln_1(x)), then x + mlp(ln_2(x)).
template <std::size_t D, std::size_t Heads>
struct gpt2_block
    : nn::sequential<nn::named<"", nn::residual<nn::named<"ln_1", nn::layer_norm<D>>, nn::named<"attn", gpt2_attention<D, Heads>>>>,
                     nn::named<"", nn::residual<nn::named<"ln_2", nn::layer_norm<D>>, nn::named<"mlp", gpt2_mlp<D>>>>> {};

/// GPT2Model without its name level: wte, wpe, h.0 .. h.{Layers-1}, ln_f.
template <std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers>
struct gpt2_transformer
    : nn::sequential<nn::named<"wte", nn::embedding<Vocab, D, /*tied*/ true>>, nn::named<"wpe", nn::position_embedding<Ctx, D>>,
                     nn::named<"h", nn::repeat<Layers, gpt2_block<D, Heads>>>, nn::named<"ln_f", nn::layer_norm<D>>> {};

namespace detail {

/// Initialises each GPT-2 parameter by its name, as GPT2PreTrainedModel._init_weights.
template <class T>
struct gpt2_initializer {
    T* params;
    seed s;
    double proj_std;
    std::string path;
    std::vector<std::size_t> marks;

    void push(std::size_t i) { push(std::string_view(std::to_string(i))); }
    void push(std::string_view name) {
        marks.push_back(path.size());
        path += name;
        path += '.';
    }
    void pop() {
        path.resize(marks.back());
        marks.pop_back();
    }
    void push_frozen() {}
    void pop_frozen() {}
    void param(const char* leaf, std::size_t offset, std::initializer_list<std::size_t> shape) {
        std::size_t n = 1;
        for (const std::size_t e : shape) n *= e;
        const std::string name = path + leaf;
        const auto ends_with = [&](std::string_view tail) {
            return name.size() >= tail.size() && std::string_view(name).substr(name.size() - tail.size()) == tail;
        };
        if (name.find(".lora_") != std::string::npos) return;  // an adapter's: initialize_adapter
        T* p = params + offset;
        const bool norm = (ends_with("ln_1.weight") || ends_with("ln_2.weight") || ends_with("ln_f.weight"));
        if (norm) std::fill(p, p + n, T(1));
        else if (ends_with(".bias")) std::fill(p, p + n, T(0));
        else init::detail::normal(p, n, random_stream(s, offset), 0, 0.0, ends_with("c_proj.weight") ? proj_std : 0.02);
    }
};

}  // namespace detail

namespace detail {
/// Whether the first part of Transformer (wte) trains: the tied head then computes dE.
template <class Transformer>
inline constexpr bool first_part_trains =
    std::tuple_element_t<0, typename graph::detail::sequential_of<Transformer>::layers>::trainable_parameter_count > 0;

/// The transformer part of a rewritten gpt2_model's sequential (graph/rewrite.hpp).
template <class Seq>
struct transformer_of;
template <class N, class Transformer, class Head>
struct transformer_of<nn::sequential<nn::named_part<N, Transformer>, Head>> {
    using type = Transformer;
};
}  // namespace detail

/// GPT2LMHeadModel over a transformer part: models::gpt2 (below), or one rewritten from it
/// (parts frozen, adapters: graph/rewrite.hpp). The tied head's offsets and whether it
/// computes dE follow from Transformer, so they stay right whatever is frozen in it.
template <class Transformer, std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers>
struct gpt2_model
    : nn::sequential<nn::named<"transformer", Transformer>,
                     nn::named<"lm_head", nn::tied_head<Vocab, D, parameter_count<Transformer>, trainable_parameter_count<Transformer>,
                                                        detail::first_part_trains<Transformer>>>> {
    static constexpr std::size_t vocab = Vocab, context = Ctx, width = D, heads = Heads, layers = Layers;
    /// The longest sequence it takes (a decoding session's default maximum: infer/decoder.hpp).
    static constexpr std::size_t context_length = Ctx;
    template <class Seq>
    using rewritten = gpt2_model<typename detail::transformer_of<Seq>::type, Vocab, Ctx, D, Heads, Layers>;

    /// As transformers initialises GPT-2 (above). Parts that state their own initialisation
    /// of what they add (LoRA adapters: initialize_adapter) do it after.
    template <class T>
    static void initialize(T* params, seed s, std::size_t offset) {
        detail::gpt2_initializer<T> init{params, s, 0.02 / std::sqrt(2.0 * static_cast<double>(Layers)), {}, {}};
        gpt2_model::visit_parameters(init, offset);
        auto adapters = [&]<class P>(std::size_t at) {
            if constexpr (requires { P::initialize_adapter(params, s, at); }) P::initialize_adapter(params, s, at);
        };
        graph::for_each_part<gpt2_model>(adapters, offset);
    }

    /// Tensors of a save_pretrained file that are not parameters: the causal-mask buffers
    /// (attn.bias, attn.masked_bias) some transformers versions store. Skipped on load.
    static bool ignored_tensor(std::string_view name) {
        const auto ends_with = [&](std::string_view tail) {
            return name.size() >= tail.size() && name.substr(name.size() - tail.size()) == tail;
        };
        return name.substr(0, 14) == "transformer.h." && (ends_with(".attn.bias") || ends_with(".attn.masked_bias"));
    }
    /// A tensor that is another name for a parameter (the tied head, which save_pretrained
    /// may store once more): the parameter's name, or "" for none. On load it must equal it.
    static std::string_view tied_tensor(std::string_view name) {
        return name == "lm_head.weight" ? std::string_view("transformer.wte.weight") : std::string_view();
    }
};

/// The whole model: token ids [B, T] (T <= Ctx) -> logits [B, T, Vocab].
template <std::size_t Vocab, std::size_t Ctx, std::size_t D, std::size_t Heads, std::size_t Layers>
struct gpt2 : gpt2_model<gpt2_transformer<Vocab, Ctx, D, Heads, Layers>, Vocab, Ctx, D, Heads, Layers> {};

}  // namespace ctdl::models
