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

namespace ctdl::infer {

/// How generate picks each token.
struct sampling {
    double temperature = 0.8;    ///< 0 picks the most likely token
    std::size_t vocab_size = 0;  ///< draw only ids below this, e.g. a tokenizer's vocab_size() when the
                                 ///< model has more output rows than the tokenizer has symbols
                                 ///< (the logits of the other ids count as -inf); 0: every id
};

/// Appends n sampled tokens to prompt (at least one token) and returns them.
template <std::size_t T, class Model>
std::vector<int> generate(Model& net, std::vector<int> prompt, std::size_t n, rng& g, const sampling& how) {
    using Exec = typename Model::exec_type;
    using V = typename Model::value_type;
    using out_shape = output_shape<typename Model::arch_type, shape<1, T>>;
    constexpr std::size_t vocab = last_extent<out_shape>;
    const double temperature = how.temperature;
    const std::size_t allowed = how.vocab_size == 0 ? vocab : how.vocab_size;
    if (prompt.empty()) throw error("generate: the prompt is empty; give at least one token");
    if (!(temperature >= 0)) throw error("generate: the temperature must be >= 0");
    if (allowed > vocab)
        throw error("generate: sampling.vocab_size is " + std::to_string(allowed) + " but the model has " +
                    std::to_string(vocab) + " output ids");
    tensor<int, shape<1, T>> window;
    tensor<V, out_shape, Exec> logits;
    std::vector<double> p(allowed);
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
        const V* last = host.data() + (len - 1) * vocab;
        // Only ids below `allowed` take part: the others have probability 0.
        std::size_t best = 0;
        for (std::size_t v = 1; v < allowed; ++v)
            if (last[v] > last[best]) best = v;
        if (temperature == 0) {
            prompt.push_back(static_cast<int>(best));
            continue;
        }
        double z = 0;
        for (std::size_t v = 0; v < allowed; ++v) z += (p[v] = std::exp((last[v] - last[best]) / temperature));
        double u = g.next_uniform<double>() * z;
        std::size_t pick = allowed - 1;
        for (std::size_t v = 0; v < allowed; ++v) {
            if (u < p[v]) {
                pick = v;
                break;
            }
            u -= p[v];
        }
        prompt.push_back(static_cast<int>(pick));
    }
    return prompt;
}

/// The same, drawing from every id at the given temperature (0 picks the most likely token).
template <std::size_t T, class Model>
std::vector<int> generate(Model& net, std::vector<int> prompt, std::size_t n, rng& g, double temperature = 0.8) {
    return generate<T>(net, std::move(prompt), n, g, sampling{.temperature = temperature});
}

}  // namespace ctdl::infer
