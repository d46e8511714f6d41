// Decoding sessions with their weights in bf16 (infer::bf16_decoder): rounding to nearest,
// ties to even (ctdl::bf16); the packed kernel widens exactly (its products equal the float
// kernel's over the rounded weights: bit for bit on AVX-512, where both are gemm_dot's
// arithmetic); a bf16 session gives the logits and greedy tokens of a float session over a
// model whose packed weights were rounded (models::gpt, and models::gpt2 with its tied head
// and Conv1D layouts); and a step allocates nothing.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "count_allocations.hpp"
#include "decoder_fixtures.hpp"

#ifndef CTDL_GOLDEN_DIR
#define CTDL_GOLDEN_DIR "tests/golden"
#endif

namespace {

using ctdl::bf16;
using linear_op = ctdl::kernel<ctdl::ops::linear_forward, ctdl::cpu>;
/// Whether the float session streams packed weights too (AVX-512): then the bf16 session's
/// single-row passes must equal its results bit for bit.
constexpr bool float_packs = ctdl::cpu_kernels::packs_small_batch<float>;

float from_bits(std::uint32_t u) { return std::bit_cast<float>(u); }
std::uint32_t bits_of(float f) { return std::bit_cast<std::uint32_t>(f); }

/// The nearest bf16 to a finite f by comparing distances (in double, where they are exact):
/// the two bf16 around f are f's top 16 bits and the next one away from zero (past the
/// largest finite bf16: infinity, whose distance counts as from 2^128, the IEEE rule); a
/// tie goes to the one with an even last bit.
std::uint16_t nearest_even(float f) {
    const std::uint32_t u = bits_of(f);
    const std::uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;
    const double x = std::abs(double(f)), vlo = std::abs(double(from_bits(lo)));
    const double vhi = (hi & 0x7fffffffu) == 0x7f800000u ? std::ldexp(1.0, 128) : std::abs(double(from_bits(hi)));
    const double dlo = x - vlo, dhi = vhi - x;
    if (dlo < dhi) return static_cast<std::uint16_t>(lo >> 16);
    if (dhi < dlo) return static_cast<std::uint16_t>(hi >> 16);
    return static_cast<std::uint16_t>(((lo >> 16) & 1u) ? hi >> 16 : lo >> 16);
}

using namespace ctdl_test::decoding;

/// Whether the session packs parameter p: the weights of the linear layers (every matrix but
/// the token and position tables, "0.weight" and "1.weight" of models::gpt).
bool packed_parameter(const ctdl::parameter_info& p) {
    return p.shape.size() == 2 && p.name != "0.weight" && p.name != "1.weight";
}

/// A copy of net with f applied to the parameters that keep(p).
template <class M, class Keep, class F>
M with_parameters(const M& net, Keep keep, F f) {
    M out = net;
    float* w = out.parameters();
    for (const auto& p : M::parameter_table())
        if (keep(p))
            for (std::size_t i = p.offset; i < p.offset + p.size; ++i) w[i] = f(w[i]);
    return out;
}

float truncate_to_bf16(float f) { return from_bits(bits_of(f) & 0xffff0000u); }

std::vector<float> copy(std::span<const float> s) { return std::vector<float>(s.begin(), s.end()); }

/// Largest difference relative to the largest logit (at least 1).
double worst_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double worst = 0, scale = 0;
    for (std::size_t v = 0; v < a.size(); ++v) {
        worst = std::max(worst, double(std::abs(a[v] - b[v])));
        scale = std::max(scale, double(std::abs(b[v])));
    }
    return worst / std::max(scale, 1.0);
}

/// Sums in other orders (a prefill of more than 4 rows: the tiled GEMM on one side); a wrong
/// weight is off by far more (a bf16 ulp of a weight: ~4e-3 of it).
constexpr double tolerance = 3e-5;


}  // namespace

TEST_CASE("bf16: a float rounds to the nearest bf16, ties to even, and widens back exactly") {
    // Exact halves between two bf16: to the even one (truncation would keep the lower).
    CHECK(bf16::round(from_bits(0x3f808000u)).bits == 0x3f80);  // 1 + 2^-8: between 0x3f80 (even) and 0x3f81
    CHECK(bf16::round(from_bits(0x3f818000u)).bits == 0x3f82);  // between 0x3f81 and 0x3f82 (even)
    CHECK(bf16::round(from_bits(0xbf818000u)).bits == 0xbf82);  // the same below zero
    CHECK(bf16::round(from_bits(0x3f80c000u)).bits == 0x3f81);  // above a half: up
    CHECK(bf16::round(from_bits(0x3f807fffu)).bits == 0x3f80);  // below a half: down
    CHECK(bf16::round(std::numeric_limits<float>::max()).widen() == std::numeric_limits<float>::infinity());
    CHECK(bf16::round(-std::numeric_limits<float>::infinity()).bits == 0xff80);
    CHECK(bf16::round(0.0f).bits == 0x0000);
    CHECK(bf16::round(-0.0f).bits == 0x8000);
    CHECK(std::isnan(bf16::round(std::numeric_limits<float>::quiet_NaN()).widen()));
    CHECK(std::isnan(bf16::round(from_bits(0x7f800001u)).widen()));  // a signalling NaN whose payload is all cut off
    CHECK(std::isnan(bf16::round(from_bits(0xff800001u)).widen()));
    static_assert(ctdl::round_to_bf16(1.5f) == 1.5f);
    // Every bf16 widens to itself: exactly its bits shifted up.
    for (std::uint32_t b = 0; b < 0x10000u; ++b) {
        const float f = bf16::from_bits(static_cast<std::uint16_t>(b)).widen();
        REQUIRE(bits_of(f) == b << 16);
        if (!std::isnan(f)) REQUIRE(bf16::round(f).bits == b);
    }
    // Finite floats of every exponent (subnormals too), and the exact halves, against the
    // distances; with truncation about half of the random ones would differ.
    ctdl::rng g{ctdl::seed{7}};
    std::size_t rounded_up = 0, checked = 0;
    auto check = [&](std::uint32_t u) {
        const float f = from_bits(u);
        if (!std::isfinite(f)) return;
        const std::uint16_t want = nearest_even(f);
        if (bf16::round(f).bits != want) FAIL_CHECK("bits " << std::hex << u << ": " << bf16::round(f).bits << " for " << want);
        rounded_up += want != (u >> 16);
        ++checked;
    };
    for (int i = 0; i < 400000; ++i) check(g.next_u32());
    for (std::uint32_t e = 0; e < 0x200u; ++e)  // each sign and exponent: halves at an even and an odd last bit
        for (std::uint32_t m : {0x8000u, 0x18000u, 0x7f8000u, 0x7fffffu, 0x1u, 0x7fffu})
            check((e << 23) | m);
    CHECK(checked > 400000);
    CHECK(rounded_up > checked / 3);
}

TEST_CASE("bf16 pack: the kernel computes with the weights rounded to bf16, widened exactly") {
    ctdl::rng g{ctdl::seed{3}};
    for (const auto& [n, k] : {std::pair<std::size_t, std::size_t>{7, 37}, {64, 48}, {13, 96}, {300, 200}}) {
        std::vector<float> w(n * k), wt(k * n), bias(n);
        for (auto& v : w) v = g.next_uniform(-1.0f, 1.0f);
        for (auto& v : bias) v = g.next_uniform(-1.0f, 1.0f);
        for (std::size_t o = 0; o < n; ++o)
            for (std::size_t i = 0; i < k; ++i) wt[i * n + o] = w[o * k + i];  // [in, out]
        std::vector<bf16> pack(linear_op::packed_size<float, bf16>(n, k)), pack_t(pack.size());
        linear_op::pack<float>(n, k, w.data(), pack.data());
        linear_op::pack_in_out<float>(n, k, wt.data(), pack_t.data());
        CHECK(std::equal(pack.begin(), pack.end(), pack_t.begin()));  // the same pack from either layout
        const auto rounded = [&] {
            std::vector<float> r(w);
            for (auto& v : r) v = ctdl::round_to_bf16(v);
            return r;
        }();
        for (const std::size_t m : {1u, 2u, 3u, 4u, 5u, 9u, 40u}) {
            INFO("m " << m << ", n " << n << ", k " << k);
            std::vector<float> x(m * k), y(m * n), y2(m * n);
            for (auto& v : x) v = g.next_uniform(-1.0f, 1.0f);
            const ctdl::epilogue::bias<float> ep{bias.data()};
            ctdl::cpu::set_threads(1);
            linear_op::run_packed(m, n, k, x.data(), pack.data(), y.data(), ep);
            ctdl::cpu::set_threads(2);
            linear_op::run_packed(m, n, k, x.data(), pack.data(), y2.data(), ep);
            CHECK(y == y2);  // the thread count changes nothing
            // Against the rounded weights in double: only the float sums' rounding differs.
            double worst = 0;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t o = 0; o < n; ++o) {
                    double s = bias[o], mag = std::abs(bias[o]);
                    for (std::size_t j = 0; j < k; ++j) {
                        s += double(x[i * k + j]) * rounded[o * k + j];
                        mag += std::abs(double(x[i * k + j]) * rounded[o * k + j]);
                    }
                    worst = std::max(worst, std::abs(y[i * n + o] - s) / mag);
                }
            CHECK(worst < 4e-6);
#if defined(__AVX512F__)
            // The float pack of the rounded weights: the same arithmetic, bit for bit.
            std::vector<float> fpack(linear_op::packed_size<float>(n, k)), yf(m * n);
            linear_op::pack<float>(n, k, rounded.data(), fpack.data());
            linear_op::run_packed(m, n, k, x.data(), fpack.data(), yf.data(), ep);
            CHECK(y == yf);
#endif
        }
    }
    ctdl::cpu::set_threads(ctdl::thread_pool::default_threads());
}

TEST_CASE("bf16 decoder: the logits of a float session over the model with its packed weights rounded") {
    auto net = make_net(3);
    const auto rounded = with_parameters(net, packed_parameter, ctdl::round_to_bf16);
    const auto truncated = with_parameters(net, packed_parameter, truncate_to_bf16);
    ctdl::infer::bf16_decoder<frozen_gpt> half{net};
    ctdl::infer::decoder<frozen_gpt> full{rounded}, exact{net}, cut{truncated};
    STATIC_REQUIRE(std::is_same_v<decltype(half)::weight_type, bf16>);
    STATIC_REQUIRE(std::is_same_v<decltype(full)::weight_type, float>);
    STATIC_REQUIRE(decltype(half)::vocab == vocab);
    // Token by token (one row a pass): the same kernel arithmetic on AVX-512, so bit for bit.
    const auto seq = some_tokens(ctx, 2);
    double from_float = 0, from_cut = 0;
    for (std::size_t t = 0; t < ctx; ++t) {
        INFO("position " << t);
        const auto a = copy(half.append(0, seq[t])), b = copy(full.append(0, seq[t]));
        if constexpr (float_packs) CHECK(a == b);
        else CHECK(worst_difference(a, b) < tolerance);
        from_float = std::max(from_float, worst_difference(a, copy(exact.append(0, seq[t]))));
        from_cut = std::max(from_cut, worst_difference(a, copy(cut.append(0, seq[t]))));
    }
    // The weights were rounded (the float model's logits differ), to nearest (not truncated).
    CHECK(from_float > 100 * tolerance);
    CHECK(from_float < 0.25);  // (weights ×3: a rounding of ~2^-9 of each moves the logits by a few %)
    CHECK(from_cut > 10 * tolerance);
    // Prefills of more rows (the bf16 kernel's row blocks; the float session's tiled GEMM).
    for (const std::size_t len : {5u, 9u, 16u}) {
        INFO("prompt length " << len);
        half.reset();
        full.reset();
        const auto prompt = some_tokens(len, 5);
        CHECK(worst_difference(copy(half.prefill(0, prompt)), copy(full.prefill(0, prompt))) < tolerance);
    }
    // Passes of 4 rows: the same logits.
    ctdl::infer::bf16_decoder<frozen_gpt, 1, ctx, 4> small_passes{net};
    half.reset();
    const auto prompt = some_tokens(11, 1);
    CHECK(worst_difference(copy(small_passes.prefill(0, prompt)), copy(half.prefill(0, prompt))) < tolerance);
    // Half the bytes of the float session's packs (when it has packs).
    CHECK(half.packed_bytes() > 0);
    if constexpr (float_packs) CHECK(2 * half.packed_bytes() == exact.packed_bytes());
}

TEST_CASE("bf16 decoder: greedy tokens of the float session over rounded weights, one sequence or a batch") {
    auto net = make_net(6);
    const auto rounded = with_parameters(net, packed_parameter, ctdl::round_to_bf16);
    ctdl::infer::bf16_decoder<frozen_gpt> half{net};
    ctdl::infer::decoder<frozen_gpt> full{rounded};
    for (const std::size_t len : {1u, 4u, 10u}) {
        INFO("prompt length " << len);
        const auto prompt = some_tokens(len, 5);
        ctdl::rng g1{ctdl::seed{1}}, g2{ctdl::seed{1}};
        const auto a = ctdl::infer::generate(half, prompt, {.max_new_tokens = ctx - len}, g1);
        CHECK(a == ctdl::infer::generate(full, prompt, {.max_new_tokens = ctx - len}, g2));
        CHECK(a.size() == ctx);
    }
    // A batch of 3 (steps of 3 rows) gives each prompt's own tokens.
    ctdl::infer::bf16_decoder<frozen_gpt, 3> batch{net};
    const std::vector<std::vector<int>> prompts{some_tokens(2, 1), some_tokens(7, 2), some_tokens(4, 3)};
    ctdl::rng g{ctdl::seed{2}};
    const ctdl::infer::generation greedy{.max_new_tokens = 6};
    const auto all = ctdl::infer::generate(batch, prompts, greedy, g);
    for (std::size_t b = 0; b < 3; ++b) {
        INFO("sequence " << b);
        CHECK(all[b] == ctdl::infer::generate(half, prompts[b], greedy, g));
    }
}

TEST_CASE("bf16 decoder: models::gpt2 (tied head, Conv1D weights) from bf16-exact weights decodes as float") {
    using g2 = ctdl::models::gpt2<97, 16, 32, 4, 2>;
    using M = ctdl::model<ctdl::frozen<g2>>;
    // Every parameter already a bf16 (as loaded from a BF16 snapshot): packing rounds nothing.
    const auto net = with_parameters(ctdl::load<M>(std::string(CTDL_GOLDEN_DIR) + "/gpt2_tiny/model.safetensors"),
                                     [](const ctdl::parameter_info&) { return true; }, ctdl::round_to_bf16);
    ctdl::infer::bf16_decoder<M, 2> half{net};
    ctdl::infer::decoder<M, 2> full{net};
    std::vector<int> seq(16);
    for (std::size_t i = 0; i < 16; ++i) seq[i] = static_cast<int>((i * 31 + 7) % 97);
    for (std::size_t t = 0; t < 16; ++t) {
        INFO("position " << t);
        const int next[2] = {seq[t], seq[15 - t]};
        half.step(next);
        full.step(next);
        for (std::size_t b = 0; b < 2; ++b) {
            const auto a = copy(half.logits(b)), f = copy(full.logits(b));
            if constexpr (float_packs) CHECK(a == f);
            else CHECK(worst_difference(a, f) < tolerance);
        }
    }
    ctdl::rng g1{ctdl::seed{1}}, g2r{ctdl::seed{1}};
    const std::vector<int> prompt(seq.begin(), seq.begin() + 6);
    CHECK(ctdl::infer::generate(half, prompt, {.max_new_tokens = 10}, g1) ==
          ctdl::infer::generate(full, prompt, {.max_new_tokens = 10}, g2r));
}

TEST_CASE("bf16 decoder: after start-up a step allocates nothing") {
    auto net = make_net(9);
    ctdl::infer::bf16_decoder<frozen_gpt, 2> dec{net};
    CHECK(ctdl_test::decoding::steps_allocate_nothing(dec));
}
