// Decoding sessions (infer/decoder.hpp): a KV cache gives what recomputing the whole window
// gives, for prompts of any length, one sequence or a batch of them; generation on it
// (sampling.hpp: greedy, temperature, top-k, top-p; stop tokens and strings; streaming);
// and a generated token allocates nothing.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "count_allocations.hpp"
#include "decoder_fixtures.hpp"

#ifndef CTDL_GOLDEN_DIR
#define CTDL_GOLDEN_DIR "tests/golden"
#endif

namespace {

using namespace ctdl_test::decoding;
/// Cache against recompute, relative to the largest logit: the two sum in other orders
/// (measured up to 1.03e-5 in the -O1 sanitizer build, ~3e-7 at -O2); a broken cache is off
/// by a whole logit.
constexpr double tolerance = 3e-5;

/// The logits at the last position of seq, by the whole-window forward (padded to ctx).
std::vector<float> recomputed(frozen_gpt& net, const std::vector<int>& seq) {
    ctdl::tensor<int, ctdl::shape<1, ctx>> w;
    std::copy(seq.begin(), seq.end(), w.data());
    auto y = net.forward(w);
    const float* row = y.data() + (seq.size() - 1) * vocab;
    return std::vector<float>(row, row + vocab);
}

double worst_difference(std::span<const float> a, const std::vector<float>& b) {
    double worst = 0, scale = 0;
    for (std::size_t v = 0; v < vocab; ++v) {
        worst = std::max(worst, double(std::abs(a[v] - b[v])));
        scale = std::max(scale, double(std::abs(b[v])));
    }
    return worst / std::max(scale, 1.0);
}


}  // namespace

TEST_CASE("decoder: prefill and appended tokens give the logits of the whole-window forward") {
    auto net = make_net(3);
    ctdl::infer::decoder<frozen_gpt> dec{net};
    STATIC_REQUIRE(decltype(dec)::max_length == ctx);
    STATIC_REQUIRE(decltype(dec)::vocab == vocab);
    for (const std::size_t len : {1u, 2u, 5u, 15u, 16u}) {
        INFO("prompt length " << len);
        dec.reset();
        std::vector<int> seq = some_tokens(len, static_cast<int>(len));
        CHECK(worst_difference(dec.prefill(0, seq), recomputed(net, seq)) < tolerance);
        CHECK(dec.length(0) == len);
        while (seq.size() < ctx) {
            const int next = static_cast<int>((seq.size() * 11 + 5) % vocab);
            seq.push_back(next);
            INFO("length " << seq.size());
            CHECK(worst_difference(dec.append(0, next), recomputed(net, seq)) < tolerance);
        }
        CHECK(dec.length(0) == ctx);
        CHECK_THROWS_WITH(dec.append(0, 1), Catch::Contains("exceed the session's maximum of 16"));
    }
}

TEST_CASE("decoder: a prompt given in pieces equals the prompt given at once") {
    auto net = make_net(4);
    ctdl::infer::decoder<frozen_gpt> a{net}, b{net};
    const auto seq = some_tokens(11, 2);
    const auto whole = a.prefill(0, seq);
    const std::vector<float> expect(whole.begin(), whole.end());
    b.prefill(0, std::vector<int>(seq.begin(), seq.begin() + 4));
    b.prefill(0, std::vector<int>(seq.begin() + 4, seq.begin() + 9));
    b.append(0, seq[9]);
    CHECK(worst_difference(b.append(0, seq[10]), expect) < tolerance);
    // A session whose passes take 4 rows prefills the 11 tokens in 3 passes: the same logits.
    ctdl::infer::decoder<frozen_gpt, 1, ctx, 4> small_passes{net};
    STATIC_REQUIRE(decltype(small_passes)::pass_rows == 4);
    CHECK(worst_difference(small_passes.prefill(0, seq), expect) < tolerance);
    CHECK(small_passes.length(0) == 11);
}

TEST_CASE("decoder: sequences of a batch are independent, in one step or one at a time") {
    auto net = make_net(5);
    ctdl::infer::decoder<frozen_gpt, 3> dec{net};
    const std::vector<std::vector<int>> prompts{some_tokens(3, 1), some_tokens(9, 2), some_tokens(1, 3)};
    std::vector<std::vector<int>> seqs = prompts;
    for (std::size_t b = 0; b < 3; ++b) dec.prefill(b, prompts[b]);
    for (int k = 0; k < 5; ++k) {
        std::vector<int> next{static_cast<int>(k + 1), k % 2 ? -1 : static_cast<int>(2 * k + 3),
                              static_cast<int>((5 * k) % vocab)};
        dec.step(next);
        for (std::size_t b = 0; b < 3; ++b) {
            if (next[b] < 0) continue;
            seqs[b].push_back(next[b]);
            INFO("sequence " << b << ", length " << seqs[b].size());
            CHECK(dec.length(b) == seqs[b].size());
            CHECK(worst_difference(dec.logits(b), recomputed(net, seqs[b])) < tolerance);
        }
    }
    CHECK_THROWS_WITH(dec.step(std::vector<int>{1, 2}), Catch::Contains("2 tokens for a batch of 3"));
    CHECK_THROWS_WITH(dec.prefill(3, prompts[0]), Catch::Contains("outside the batch of 3"));
    CHECK_THROWS_WITH(dec.prefill(0, std::vector<int>{}), Catch::Contains("no tokens"));
}

TEST_CASE("decoder: a trainable model decodes too, with its current parameters") {
    ctdl::model<gpt> net{ctdl::seed{9}};
    ctdl::infer::decoder<ctdl::model<gpt>> dec{net};
    const auto seq = some_tokens(6, 4);
    ctdl::tensor<int, ctdl::shape<1, ctx>> w;
    std::copy(seq.begin(), seq.end(), w.data());
    auto y = net.forward(w);
    std::vector<float> expect(y.data() + 5 * vocab, y.data() + 6 * vocab);
    CHECK(worst_difference(dec.prefill(0, seq), expect) < tolerance);
    // The session reads the model's parameters in place.
    for (std::size_t i = 0; i < net.parameter_count; ++i) net.parameters()[i] *= 0.5f;
    y = net.forward(w);
    expect.assign(y.data() + 5 * vocab, y.data() + 6 * vocab);
    dec.reset();
    CHECK(worst_difference(dec.prefill(0, seq), expect) < tolerance);
}

TEST_CASE("generation: greedy with the cache gives the tokens of recomputing every step") {
    auto net = make_net(6);
    ctdl::infer::decoder<frozen_gpt> dec{net};
    for (const std::size_t len : {1u, 4u, 10u}) {
        INFO("prompt length " << len);
        const auto prompt = some_tokens(len, 5);
        const std::size_t n = ctx - len;
        ctdl::rng g1{ctdl::seed{1}}, g2{ctdl::seed{1}};
        const auto cached = ctdl::infer::generate(dec, prompt, {.max_new_tokens = n}, g1);
        const auto recompute = ctdl::infer::generate<ctx>(net, prompt, n, g2, 0.0);
        REQUIRE(cached.size() == ctx);
        CHECK(cached == recompute);
        // Not one token repeated over and over: the test would not see a broken cache.
        std::map<int, int> distinct;
        for (std::size_t i = len; i < cached.size(); ++i) ++distinct[cached[i]];
        CHECK(distinct.size() > 1);
    }
}

TEST_CASE("generation: a batch of prompts of different lengths gives each prompt's own tokens") {
    auto net = make_net(7);
    ctdl::infer::decoder<frozen_gpt, 4> batch{net};
    ctdl::infer::decoder<frozen_gpt> one{net};
    const std::vector<std::vector<int>> prompts{some_tokens(2, 1), some_tokens(7, 2), some_tokens(4, 3)};
    ctdl::rng g{ctdl::seed{2}};
    const ctdl::infer::generation greedy{.max_new_tokens = 6};
    std::vector<std::vector<int>> streamed(3);
    const auto all = ctdl::infer::generate(batch, prompts, greedy, g, [&](std::size_t b, int t) {
        streamed[b].push_back(t);
        return true;
    });
    REQUIRE(all.size() == 3);
    for (std::size_t b = 0; b < 3; ++b) {
        INFO("sequence " << b);
        CHECK(all[b] == ctdl::infer::generate(one, prompts[b], greedy, g));
        CHECK(all[b].size() == prompts[b].size() + 6);
        CHECK(std::vector<int>(all[b].begin() + static_cast<std::ptrdiff_t>(prompts[b].size()), all[b].end()) ==
              streamed[b]);
    }
    CHECK_THROWS_WITH(ctdl::infer::generate(batch, std::vector<std::vector<int>>(5, {1}), greedy, g),
                      Catch::Contains("5 prompts for a session of batch 4"));
}

TEST_CASE("generation: stop tokens, stop strings and a callback that says stop") {
    auto net = make_net(8);
    ctdl::infer::decoder<frozen_gpt> dec{net};
    const auto prompt = some_tokens(3, 7);
    ctdl::rng g{ctdl::seed{3}};
    const auto free_run = ctdl::infer::generate(dec, prompt, {.max_new_tokens = 10}, g);
    REQUIRE(free_run.size() == 13);
    // Stop at the token generated fourth: it is kept, nothing after it.
    const int stop = free_run[6];
    const auto first_stop = std::find(free_run.begin() + 3, free_run.end(), stop) - free_run.begin();
    const auto stopped = ctdl::infer::generate(dec, prompt, {.max_new_tokens = 10, .stop_tokens = {stop}}, g);
    CHECK(stopped == std::vector<int>(free_run.begin(), free_run.begin() + first_stop + 1));
    // A stop string over the tokens' text ("<id>" each): ends where it completes.
    ctdl::infer::generation by_text{.max_new_tokens = 10};
    by_text.token_text = [](int t, std::string& s) { s += "<" + std::to_string(t) + ">"; };
    by_text.stop_strings = {"<" + std::to_string(free_run[7]) + "><" + std::to_string(free_run[8]) + ">"};
    const auto by_string = ctdl::infer::generate(dec, prompt, by_text, g);
    CHECK(by_string.size() <= 9);
    CHECK(std::equal(by_string.begin(), by_string.end(), free_run.begin()));
    // The callback stops after two tokens.
    int calls = 0;
    const auto two = ctdl::infer::generate(dec, prompt, {.max_new_tokens = 10}, g, [&](std::size_t, int) {
        return ++calls < 2;
    });
    CHECK(two == std::vector<int>(free_run.begin(), free_run.begin() + 5));
    CHECK(calls == 2);
    ctdl::infer::generation no_text{.max_new_tokens = 3, .stop_strings = {"x"}};
    CHECK_THROWS_WITH(ctdl::infer::generate(dec, prompt, no_text, g), Catch::Contains("token_text"));
}

TEST_CASE("generation: after start-up a generated token allocates nothing") {
    auto net = make_net(9);
    ctdl::infer::decoder<frozen_gpt, 2> dec{net};
    CHECK(ctdl_test::decoding::steps_allocate_nothing(dec));
    ctdl::rng g{ctdl::seed{4}};
    const ctdl::infer::sampling how{.temperature = 0.9, .top_k = 20, .top_p = 0.9};
    // generate: what it allocates does not grow with the number of tokens.
    const auto count = [&](std::size_t n) {
        const auto b = test_allocations.load();
        (void)ctdl::infer::generate(dec, some_tokens(3, 3), {.max_new_tokens = n, .how = how}, g);
        return test_allocations.load() - b;
    };
    CHECK(count(2) == count(10));
}

TEST_CASE("sampling: greedy, top-k, top-p and the temperature draw from the right ids") {
    ctdl::infer::sampler pick{6};
    const std::vector<float> logits{1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    ctdl::rng g{ctdl::seed{11}};
    CHECK(pick(logits, {.temperature = 0}, g) == 1);  // the first of two largest
    CHECK(pick(logits, {.temperature = 1.0, .top_k = 1}, g) == 1);
    std::map<int, int> seen;
    for (int i = 0; i < 3000; ++i) ++seen[pick(logits, {.temperature = 1.0, .top_k = 3}, g)];
    CHECK(seen.size() == 3);  // ids 1, 3 (logit 3) and 2 (logit 2)
    CHECK((seen.count(1) && seen.count(2) && seen.count(3)));
    // p(2) = e^2 / (2 e^3 + e^2) = 0.155 within the top 3
    CHECK(seen[2] / 3000.0 == Approx(std::exp(2.0) / (2 * std::exp(3.0) + std::exp(2.0))).margin(0.03));
    // top_p 0.5: the two ids of logit 3 hold 0.30 each of the whole, so both are needed and enough
    seen.clear();
    for (int i = 0; i < 2000; ++i) ++seen[pick(logits, {.temperature = 1.0, .top_p = 0.5}, g)];
    CHECK(seen.size() == 2);
    CHECK(seen[1] / 2000.0 == Approx(0.5).margin(0.05));
    // A high temperature reaches every id; vocab_size cuts the last ones.
    seen.clear();
    for (int i = 0; i < 3000; ++i) ++seen[pick(logits, {.temperature = 5.0, .vocab_size = 4}, g)];
    CHECK(seen.size() == 4);
    CHECK(seen.rbegin()->first == 3);
    // The same seed, the same draws.
    ctdl::rng a{ctdl::seed{5}}, b{ctdl::seed{5}};
    for (int i = 0; i < 50; ++i)
        CHECK(pick(logits, {.temperature = 0.7, .top_k = 4, .top_p = 0.9}, a) ==
              pick(logits, {.temperature = 0.7, .top_k = 4, .top_p = 0.9}, b));
    CHECK_THROWS_WITH(pick(logits, {.temperature = -1}, g), Catch::Contains("temperature"));
    CHECK_THROWS_WITH(pick(logits, {.temperature = 1, .top_p = 0}, g), Catch::Contains("top_p"));
    CHECK_THROWS_WITH(pick(logits, {.temperature = 1, .vocab_size = 7}, g), Catch::Contains("vocab_size is 7"));
    CHECK_THROWS_WITH(pick(std::vector<float>(5), {.temperature = 1}, g), Catch::Contains("5 logits"));
}

TEST_CASE("decoder: models::gpt2 (tied head, Conv1D layouts) from transformers' file decodes as it recomputes") {
    using g2 = ctdl::models::gpt2<97, 16, 32, 4, 2>;
    using M = ctdl::model<ctdl::frozen<g2>>;
    const auto net = ctdl::load<M>(std::string(CTDL_GOLDEN_DIR) + "/gpt2_tiny/model.safetensors");
    auto recompute_net = net;
    ctdl::infer::decoder<M, 2> dec{net};
    for (const std::size_t len : {1u, 6u}) {
        INFO("prompt length " << len);
        std::vector<int> prompt(len);
        for (std::size_t i = 0; i < len; ++i) prompt[i] = static_cast<int>((i * 31 + 7) % 97);
        ctdl::rng g1{ctdl::seed{1}}, g2r{ctdl::seed{1}};
        const auto cached = ctdl::infer::generate(dec, prompt, {.max_new_tokens = 16 - len}, g1);
        CHECK(cached == ctdl::infer::generate<16>(recompute_net, prompt, 16 - len, g2r, 0.0));
        // and the logits after the whole window, row by row
        ctdl::tensor<int, ctdl::shape<1, 16>> w;
        std::copy(cached.begin(), cached.end(), w.data());
        auto y = recompute_net.forward(w);
        dec.reset();
        const auto l = dec.prefill(1, cached);
        double worst = 0;
        for (std::size_t v = 0; v < 97; ++v) worst = std::max(worst, double(std::abs(l[v] - y(0, 15, v))));
        CHECK(worst < tolerance);
    }
}
