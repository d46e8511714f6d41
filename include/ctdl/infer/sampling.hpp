#pragma once
// Picking the next token from a row of logits: greedy, or a draw at a temperature from the
// top-k and top-p (nucleus) candidates, from a seeded ctdl::rng.
//
//   ctdl::infer::sampler pick{vocab};                       // buffers made once
//   int next = pick(logits, {.temperature = 0.8, .top_k = 40, .top_p = 0.95}, g);
//
// The order is the one transformers' generate applies: temperature, then top-k (the k
// largest logits), then top-p (the fewest most likely candidates whose probabilities sum to
// at least p), then one draw. Candidates are ranked by logit, equal logits by id, so a
// seed gives the same tokens on every machine. Temperature 0 (or top_k = 1) is greedy: the
// first id with the largest logit. A pick allocates nothing.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"

namespace ctdl::infer {

/// How the next token is picked.
struct sampling {
    double temperature = 0.8;    ///< 0 picks the most likely token
    std::size_t vocab_size = 0;  ///< draw only ids below this, e.g. a tokenizer's vocab_size() when the
                                 ///< model has more output rows than the tokenizer has symbols
                                 ///< (the logits of the other ids count as -inf); 0: every id
    std::size_t top_k = 0;       ///< keep the k most likely ids (0: all)
    double top_p = 1.0;          ///< keep the fewest most likely ids whose probability sums to >= top_p (1: all)
};

/// Picks tokens from logits; holds the buffers a pick needs (one per vocabulary entry).
class sampler {
public:
    explicit sampler(std::size_t vocab) : vocab_(vocab), ids_(vocab), p_(vocab) {}

    std::size_t vocab() const { return vocab_; }

    /// Throws ctdl::error for settings no pick can follow (as each pick would).
    void check(const sampling& how) const {
        if (!(how.temperature >= 0) || !std::isfinite(how.temperature))
            throw error("sampling: the temperature must be a finite number >= 0 (it is " +
                        std::to_string(how.temperature) + ")");
        if (!(how.top_p > 0 && how.top_p <= 1))
            throw error("sampling: top_p must be in (0, 1] (it is " + std::to_string(how.top_p) + ")");
        if (how.vocab_size > vocab_)
            throw error("sampling: vocab_size is " + std::to_string(how.vocab_size) + " but the model has " +
                        std::to_string(vocab_) + " output ids");
    }

    /// The next token for logits (vocab() values).
    template <class T>
    int operator()(std::span<const T> logits, const sampling& how, rng& g) {
        check(how);
        if (logits.size() != vocab_)
            throw error("sampling: " + std::to_string(logits.size()) + " logits for a vocabulary of " +
                        std::to_string(vocab_));
        const std::size_t allowed = how.vocab_size == 0 ? vocab_ : how.vocab_size;
        std::size_t best = 0;
        for (std::size_t v = 1; v < allowed; ++v)
            if (logits[v] > logits[best]) best = v;
        if (how.temperature == 0 || how.top_k == 1 || allowed == 1) return static_cast<int>(best);

        // Candidates, most likely first (equal logits: lower id first).
        std::size_t n = allowed;
        for (std::size_t v = 0; v < n; ++v) ids_[v] = static_cast<std::uint32_t>(v);
        const auto before = [&](std::uint32_t a, std::uint32_t b) {
            return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        };
        const bool top_k = how.top_k > 0 && how.top_k < n, nucleus = how.top_p < 1;
        if (top_k) {
            std::nth_element(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(how.top_k - 1),
                             ids_.begin() + static_cast<std::ptrdiff_t>(n), before);
            n = how.top_k;
        }
        // Ranked when cut, so the draw's order does not depend on nth_element's.
        if (top_k || nucleus) std::sort(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(n), before);
        double z = 0;
        for (std::size_t i = 0; i < n; ++i)
            z += (p_[i] = std::exp((logits[ids_[i]] - logits[best]) / how.temperature));
        if (nucleus) {  // the shortest prefix reaching top_p of the mass (at least one id)
            double cum = 0;
            std::size_t keep = 0;
            while (keep < n) {
                cum += p_[keep++];
                if (cum >= how.top_p * z) break;
            }
            n = keep;
            z = cum;
        }
        double u = g.next_uniform<double>() * z;
        for (std::size_t i = 0; i < n; ++i) {
            if (u < p_[i]) return static_cast<int>(ids_[i]);
            u -= p_[i];
        }
        return static_cast<int>(ids_[n - 1]);  // u at the very top (rounding)
    }
    template <class T>
    int operator()(const std::vector<T>& logits, const sampling& how, rng& g) {
        return (*this)(std::span<const T>(logits), how, g);
    }

private:
    std::size_t vocab_;
    std::vector<std::uint32_t> ids_;
    std::vector<double> p_;
};

}  // namespace ctdl::infer
