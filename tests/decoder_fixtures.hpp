#pragma once
// What the decoding tests share (test_decoder.cpp, test_decoder_bf16.cpp): a small frozen
// GPT with weights scaled up so greedy choices are not near-ties, token sequences, and the
// check that a session's steps allocate nothing once it has started.
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "count_allocations.hpp"

namespace ctdl_test::decoding {

inline constexpr std::size_t vocab = 40, ctx = 16;
using gpt = ctdl::models::gpt<vocab, ctx, 32, 4, 2>;
using frozen_gpt = ctdl::model<ctdl::frozen<gpt>>;

inline frozen_gpt make_net(std::uint64_t seed) {
    ctdl::model<gpt> net{ctdl::seed{seed}};
    // Larger weights than the initialisation's, so the logits differ enough that greedy
    // choices are not near-ties.
    for (std::size_t i = 0; i < net.parameter_count; ++i) net.parameters()[i] *= 3.0f;
    return ctdl::freeze(std::move(net));
}

inline std::vector<int> some_tokens(std::size_t n, int salt) {
    std::vector<int> t(n);
    for (std::size_t i = 0; i < n; ++i) t[i] = static_cast<int>((i * 7 + 3 * static_cast<std::size_t>(salt) + 1) % vocab);
    return t;
}

/// Prefills sequences 0 and 1 of a two-sequence session, then samples and steps 6 times:
/// whether those steps allocated nothing.
template <class Decoder>
bool steps_allocate_nothing(Decoder& dec) {
    ctdl::infer::sampler pick{vocab};
    ctdl::rng g{ctdl::seed{4}};
    const ctdl::infer::sampling how{.temperature = 0.9, .top_k = 20, .top_p = 0.9};
    int t = pick(dec.prefill(0, some_tokens(5, 1)), how, g);
    int u = pick(dec.prefill(1, some_tokens(2, 2)), how, g);
    const auto before = test_allocations.load();
    for (int k = 0; k < 6; ++k) {
        const int next[2] = {t, u};
        dec.step(next);
        t = pick(dec.logits(0), how, g);
        u = pick(dec.logits(1), how, g);
    }
    return test_allocations.load() == before;
}

}  // namespace ctdl_test::decoding
