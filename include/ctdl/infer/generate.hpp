#pragma once
// Sampling text from a causal language model with a context of at most T tokens: the last
// (up to) T tokens go in, the logits at the last real position give the next token's
// distribution (softmax at a temperature), a draw from the generator picks it, and the
// window slides on.
//
// Shorter sequences need no new type: the window is padded on the right to T. In a causal
// model position t only sees positions <= t, and every other layer works per position, so
// the outputs at the real positions are exactly (bitwise) those of a model run on the
// short sequence alone (tests/test_pretrain.cpp checks this); the padding costs compute only.
//
//   auto ids = ctdl::infer::generate<T>(net, prompt, 100, g, {.temperature = 0.7, .vocab_size = tok.vocab_size()});
//
// vocab_size keeps the draws to the ids a tokenizer can decode when the model has more
// output rows than the tokenizer has symbols (an untrained or briefly trained model gives
// every row some probability).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../core/transfer.hpp"
#include "../nn/layer.hpp"
#include "sampling.hpp"

namespace ctdl::infer {

/// Appends n sampled tokens to prompt (at least one token) and returns them.
template <std::size_t T, class Model>
std::vector<int> generate(Model& net, std::vector<int> prompt, std::size_t n, rng& g, const sampling& how) {
    using Exec = typename Model::exec_type;
    using V = typename Model::value_type;
    using out_shape = output_shape<typename Model::arch_type, shape<1, T>>;
    constexpr std::size_t vocab = last_extent<out_shape>;
    if (prompt.empty()) throw error("generate: the prompt is empty; give at least one token");
    tensor<int, shape<1, T>> window;
    tensor<V, out_shape, Exec> logits;
    sampler pick(vocab);
    pick.check(how);
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t len = prompt.size() < T ? prompt.size() : T;
        std::fill(window.begin(), window.end(), 0);
        std::copy(prompt.end() - static_cast<std::ptrdiff_t>(len), prompt.end(), window.data());
        if constexpr (Exec::host_accessible) {
            net.forward(window, logits);
        } else {
            net.forward(to<Exec>(window), logits);
        }
        const auto host = to<cpu>(logits);
        prompt.push_back(pick(std::span<const V>(host.data() + (len - 1) * vocab, vocab), how, g));
    }
    return prompt;
}

/// The same, drawing from every id at the given temperature (0 picks the most likely token).
template <std::size_t T, class Model>
std::vector<int> generate(Model& net, std::vector<int> prompt, std::size_t n, rng& g, double temperature = 0.8) {
    return generate<T>(net, std::move(prompt), n, g, sampling{.temperature = temperature});
}

}  // namespace ctdl::infer
