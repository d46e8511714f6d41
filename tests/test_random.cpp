#include <catch2/catch.hpp>
#include <ctdl/core/init.hpp>
#include <ctdl/core/random.hpp>
#include <ctdl/core/tensor.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <type_traits>
#include <vector>

namespace {

using ctdl::philox::counter;
using ctdl::philox::philox4x32_10;

// Sample moments in double.
struct moments {
    double mean = 0, var = 0, skew = 0, kurt = 0, min = 0, max = 0;
};
template <class It>
moments moments_of(It first, It last) {
    const double n = static_cast<double>(last - first);
    moments m;
    m.min = m.max = static_cast<double>(*first);
    for (It i = first; i != last; ++i) {
        m.mean += static_cast<double>(*i);
        m.min = std::min(m.min, static_cast<double>(*i));
        m.max = std::max(m.max, static_cast<double>(*i));
    }
    m.mean /= n;
    double m2 = 0, m3 = 0, m4 = 0;
    for (It i = first; i != last; ++i) {
        const double d = static_cast<double>(*i) - m.mean;
        m2 += d * d;
        m3 += d * d * d;
        m4 += d * d * d * d;
    }
    m2 /= n, m3 /= n, m4 /= n;
    m.var = m2;
    m.skew = m3 / std::pow(m2, 1.5);
    m.kurt = m4 / (m2 * m2);
    return m;
}

constexpr std::size_t big = 100000;

}  // namespace

// ---------------------------------------------------------------- Philox known answers

// The known-answer vectors of Random123's kat_vectors for philox4x32-10.
static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0}) == counter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
static_assert(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
              counter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
static_assert(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
              counter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors at run time") {
    // The same vectors through a non-constant path (the static_asserts above check constexpr).
    volatile std::uint32_t zero = 0, ones = 0xffffffff;
    CHECK(philox4x32_10({zero, zero, zero, zero}, {zero, zero}) ==
          counter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
    CHECK(philox4x32_10({ones, ones, ones, ones}, {ones, ones}) ==
          counter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
    CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
          counter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("random_stream lays words out as documented") {
    const ctdl::random_stream rs{ctdl::seed{0x0123456789abcdefull}, 0xfedcba9876543210ull};
    // block b: counter (b lo, b hi, stream lo, stream hi), key (seed lo, seed hi).
    const auto b5 = philox4x32_10({5, 0, 0x76543210, 0xfedcba98}, {0x89abcdef, 0x01234567});
    CHECK(rs.block(5) == b5);
    for (std::uint64_t l = 0; l < 4; ++l) CHECK(rs.uint32(20 + l) == b5[l]);
    CHECK(rs.uint64(10) == (std::uint64_t{b5[0]} | std::uint64_t{b5[1]} << 32));
    CHECK(rs.uint64(11) == (std::uint64_t{b5[2]} | std::uint64_t{b5[3]} << 32));
    CHECK(rs.uniform<float>(21) == static_cast<float>(b5[1] >> 8) / 16777216.0f);
    CHECK(rs.uniform<double>(11) == static_cast<double>(rs.uint64(11) >> 11) / 9007199254740992.0);
    // A 64-bit block index reaches the counter's second word.
    const std::uint64_t far = (std::uint64_t{3} << 32) + 7;
    CHECK(rs.block(far) == philox4x32_10({7, 3, 0x76543210, 0xfedcba98}, {0x89abcdef, 0x01234567}));
    // normal<float> is normal<double> rounded.
    for (std::uint64_t i = 0; i < 100; ++i) CHECK(rs.normal<float>(i) == static_cast<float>(rs.normal<double>(i)));
}

TEST_CASE("uniform draws stay below 1 at the extreme bit patterns") {
    CHECK(ctdl::uniform_float_from_bits(0) == 0.0f);
    CHECK(ctdl::uniform_float_from_bits(0xffffffffu) < 1.0f);
    CHECK(ctdl::uniform_float_from_bits(0xffffffffu) == 1.0f - 0x1.0p-24f);
    CHECK(ctdl::uniform_double_from_bits(0) == 0.0);
    CHECK(ctdl::uniform_double_from_bits(~std::uint64_t{0}) == 1.0 - 0x1.0p-53);
    // Box–Muller at u1 = the largest value below 1 stays finite.
    const auto z = ctdl::box_muller({0xffffffffu, 0xffffffffu, 0, 0});
    CHECK(std::isfinite(z[0]));
    CHECK(z[0] == Approx(std::sqrt(2.0 * 53.0 * std::log(2.0))));
}

// ---------------------------------------------------------------- determinism, independence

TEST_CASE("random_stream is a pure function of (seed, stream, index)") {
    const ctdl::random_stream a{ctdl::seed{42}, 3}, b{ctdl::seed{42}, 3};
    for (std::uint64_t i = 0; i < 1000; ++i) {
        CHECK(a.uint32(i) == b.uint32(i));
        CHECK(a.uniform<float>(i) == b.uniform<float>(i));
        CHECK(a.normal<double>(i) == b.normal<double>(i));
    }
    // Reading in reverse order, or a single index in isolation, gives the same values.
    std::vector<float> fwd(257), rev(257);
    for (std::size_t i = 0; i < fwd.size(); ++i) fwd[i] = a.uniform<float>(i);
    for (std::size_t i = rev.size(); i-- > 0;) rev[i] = a.uniform<float>(i);
    CHECK(fwd == rev);
    CHECK(ctdl::random_stream{ctdl::seed{42}, 3}.uniform<float>(200) == fwd[200]);
}

TEST_CASE("different seeds and different streams give different numbers") {
    const ctdl::random_stream base{ctdl::seed{1}, 0};
    const ctdl::random_stream other_seed{ctdl::seed{2}, 0}, other_stream{ctdl::seed{1}, 1};
    const ctdl::random_stream high_seed{ctdl::seed{1ull << 40}, 0}, high_stream{ctdl::seed{1}, 1ull << 40};
    int same_seed = 0, same_stream = 0, same_high = 0;
    for (std::uint64_t i = 0; i < 4096; ++i) {
        same_seed += base.uint32(i) == other_seed.uint32(i);
        same_stream += base.uint32(i) == other_stream.uint32(i);
        same_high += (base.uint32(i) == high_seed.uint32(i)) + (base.uint32(i) == high_stream.uint32(i));
    }
    // Equal 32-bit words happen by chance with probability 2^-32 each.
    CHECK(same_seed <= 1);
    CHECK(same_stream <= 1);
    CHECK(same_high <= 1);
    // Consecutive words are not repeated within a stream either.
    std::set<std::uint32_t> seen;
    for (std::uint64_t i = 0; i < 4096; ++i) seen.insert(base.uint32(i));
    CHECK(seen.size() >= 4094);
}

TEST_CASE("child streams are deterministic and distinct") {
    const ctdl::random_stream rs{ctdl::seed{9}, 0};
    CHECK(rs.child(0) == rs.child(0));
    CHECK(rs.child(0).seed_value == 9);
    std::set<std::uint64_t> ids{rs.stream};
    for (std::uint64_t k = 0; k < 1000; ++k) ids.insert(rs.child(k).stream);
    for (std::uint64_t k = 0; k < 100; ++k) ids.insert(rs.child(1).child(k).stream);
    CHECK(ids.size() == 1101);
    // The child id depends on the parent stream, not on the seed.
    CHECK(ctdl::random_stream{ctdl::seed{10}, 0}.child(5).stream == rs.child(5).stream);
    CHECK(ctdl::random_stream{ctdl::seed{9}, 1}.child(5).stream != rs.child(5).stream);
}

// ---------------------------------------------------------------- distributions

TEST_CASE("uniform draws have the moments of the unit uniform distribution") {
    const ctdl::random_stream rs{ctdl::seed{2024}, 17};
    std::vector<double> f(big), d(big);
    for (std::size_t i = 0; i < big; ++i) {
        f[i] = rs.uniform<float>(i);
        d[i] = rs.uniform<double>(i);
    }
    for (const auto* v : {&f, &d}) {
        const auto m = moments_of(v->begin(), v->end());
        // mean 1/2 with standard error sqrt(1/12 / n) ≈ 9.1e-4: allow 5 standard errors.
        CHECK(std::abs(m.mean - 0.5) < 5 * std::sqrt(1.0 / 12 / big));
        // variance 1/12; the sample variance's standard error is sqrt((1/80 - 1/144) / n) ≈ 2.4e-4.
        CHECK(std::abs(m.var - 1.0 / 12) < 5 * std::sqrt((1.0 / 80 - 1.0 / 144) / big));
        CHECK(m.min >= 0.0);
        CHECK(m.max < 1.0);
        CHECK(m.min < 1e-3);
        CHECK(m.max > 1 - 1e-3);
        // A histogram of 10 bins is flat (chi-squared with 9 dof; 99.99% quantile ≈ 33.7).
        std::vector<double> bins(10);
        for (double x : *v) bins[static_cast<std::size_t>(x * 10)] += 1;
        double chi2 = 0;
        for (double b : bins) chi2 += (b - big / 10.0) * (b - big / 10.0) / (big / 10.0);
        CHECK(chi2 < 33.7);
    }
}

TEST_CASE("normal draws have the moments of N(0, 1)") {
    const ctdl::random_stream rs{ctdl::seed{77}, 5};
    std::vector<double> z(big);
    for (std::size_t i = 0; i < big; ++i) z[i] = rs.normal<double>(i);
    const auto m = moments_of(z.begin(), z.end());
    CHECK(std::abs(m.mean) < 5 / std::sqrt(double(big)));          // se 1/sqrt(n)
    CHECK(std::abs(m.var - 1) < 5 * std::sqrt(2.0 / big));         // se sqrt(2/n)
    CHECK(std::abs(m.skew) < 5 * std::sqrt(6.0 / big));            // se sqrt(6/n)
    CHECK(std::abs(m.kurt - 3) < 5 * std::sqrt(24.0 / big));       // se sqrt(24/n)
    // Tails: P(|z| > 3) = 0.0027; expect 270 ± 3·16.
    const auto tail = std::count_if(z.begin(), z.end(), [](double x) { return std::abs(x) > 3; });
    CHECK(tail > 270 - 50);
    CHECK(tail < 270 + 50);
    // The two members of a Box–Muller pair are uncorrelated.
    double c = 0;
    for (std::size_t i = 0; i < big; i += 2) c += z[i] * z[i + 1];
    CHECK(std::abs(c / (big / 2)) < 5 / std::sqrt(big / 2.0));
}

// ---------------------------------------------------------------- rng

TEST_CASE("rng draws are reproducible from a saved state") {
    ctdl::rng g{ctdl::seed{5}, 2};
    g.next_u32();
    g.next_normal();
    const ctdl::rng_state saved = g.state();
    static_assert(std::is_trivially_copyable_v<ctdl::rng_state> && std::is_standard_layout_v<ctdl::rng_state>);
    static_assert(sizeof(ctdl::rng_state) == 3 * sizeof(std::uint64_t));
    static_assert(std::is_trivially_copyable_v<ctdl::rng>);

    std::vector<double> first;
    for (int i = 0; i < 50; ++i) {
        first.push_back(g.next_uniform());
        first.push_back(g.next_uniform<double>());
        first.push_back(g.next_normal<double>());
        first.push_back(static_cast<double>(g.next_u64() >> 12));
        first.push_back(static_cast<double>(g.next_below(1000)));
    }
    ctdl::rng h{saved};
    std::vector<double> again;
    for (int i = 0; i < 50; ++i) {
        again.push_back(h.next_uniform());
        again.push_back(h.next_uniform<double>());
        again.push_back(h.next_normal<double>());
        again.push_back(static_cast<double>(h.next_u64() >> 12));
        again.push_back(static_cast<double>(h.next_below(1000)));
    }
    CHECK(first == again);
    CHECK(g == h);
    ctdl::rng k;
    k.set_state(saved);
    CHECK(k.next_uniform() == first[0]);
}

TEST_CASE("rng reads exactly what the pure accessors read") {
    const ctdl::random_stream rs{ctdl::seed{11}, 4};
    ctdl::rng g{rs};
    CHECK(g.next_u32() == rs.uint32(0));         // word 0
    CHECK(g.next_u64() == rs.uint64(1));         // words 2, 3
    CHECK(g.next_uniform() == rs.uniform<float>(4));
    CHECK(g.next_normal<double>() == rs.normal<double>(4));  // block 2 = words 8..11
    CHECK(g.state().counter == 12);
    CHECK(g.next_uniform<double>() == rs.uniform<double>(6));
    CHECK(g.next_uniform(-2.0f, -1.0f) == -2.0f + rs.uniform<float>(14));
}

TEST_CASE("rng::split gives distinct, reproducible children") {
    ctdl::rng g{ctdl::seed{3}};
    ctdl::rng a = g.split(), b = g.split();
    CHECK(a.stream().stream != b.stream().stream);
    CHECK(a.stream().stream != g.stream().stream);
    ctdl::rng g2{ctdl::seed{3}};
    ctdl::rng a2 = g2.split();
    CHECK(a.next_u64() == a2.next_u64());
    CHECK(a.next_u64() != b.next_u64());
}

TEST_CASE("rng::next_below is in range and unbiased") {
    ctdl::rng g{ctdl::seed{8}};
    std::vector<int> hits(7);
    for (int i = 0; i < 70000; ++i) {
        const auto v = g.next_below(7);
        REQUIRE(v < 7);
        ++hits[v];
    }
    for (int h : hits) CHECK(std::abs(h - 10000) < 5 * 93);  // sd sqrt(70000 · 1/7 · 6/7) ≈ 93
    CHECK(g.next_below(1) == 0);
    CHECK(g.next_below(0) == 0);
    const std::uint64_t huge = (std::uint64_t{1} << 63) + 12345;
    for (int i = 0; i < 100; ++i) CHECK(g.next_below(huge) < huge);
    CHECK(ctdl::detail::mul_wide(~0ull, ~0ull) == std::array<std::uint64_t, 2>{~0ull - 1, 1});
    CHECK(ctdl::detail::mul_wide(0x123456789ull, 0x1000000000ull) ==
          std::array<std::uint64_t, 2>{0x12, 0x3456789000000000ull});
}

// ---------------------------------------------------------------- initializers

namespace {
template <class X>
moments moments_of_tensor(const X& x) {
    return moments_of(x.data(), x.data() + ctdl::shape_of<X>::size);
}
}  // namespace

TEST_CASE("init::uniform and init::normal fill with the requested distribution") {
    ctdl::tensor<float, ctdl::shape<400, 250>> x;  // 1e5 elements: filled in parallel
    ctdl::init::uniform(x, {ctdl::seed{1}, 0}, -3.0, 5.0);
    auto m = moments_of_tensor(x);
    CHECK(m.min >= -3.0);
    CHECK(m.max <= 5.0);
    CHECK(m.min < -3.0 + 1e-3);
    CHECK(m.max > 5.0 - 1e-3);
    CHECK(std::abs(m.mean - 1.0) < 5 * 8 * std::sqrt(1.0 / 12 / big));

    ctdl::tensor<double, ctdl::shape<big>> y;
    ctdl::init::normal(y, ctdl::seed{2}, 10.0, 0.5);
    m = moments_of_tensor(y);
    CHECK(std::abs(m.mean - 10.0) < 5 * 0.5 / std::sqrt(double(big)));
    CHECK(std::abs(std::sqrt(m.var) - 0.5) < 5 * 0.5 * std::sqrt(0.5 / big));
    CHECK(std::abs(m.kurt - 3) < 5 * std::sqrt(24.0 / big));
    // Element i is draw i of the stream.
    const ctdl::random_stream rs{ctdl::seed{2}, 0};
    CHECK(y(12345) == 10.0 + 0.5 * rs.normal<double>(12345));
    CHECK(x(3, 7) == -3.0f + 8.0f * ctdl::random_stream{ctdl::seed{1}, 0}.uniform<float>(3 * 250 + 7));
}

TEST_CASE("init fills do not depend on the thread count or on views") {
    ctdl::tensor<float, ctdl::shape<300, 300>> a, b;
    const ctdl::random_stream rs{ctdl::seed{6}, 1};
    const auto threads = ctdl::cpu::threads();
    ctdl::cpu::set_threads(1);
    ctdl::init::normal(a, rs);
    ctdl::cpu::set_threads(2);
    ctdl::init::normal(b, rs);
    CHECK(ctdl::equal(a, b));
    ctdl::cpu::set_threads(3);
    ctdl::init::uniform(a, rs);
    ctdl::cpu::set_threads(threads);
    ctdl::init::uniform(b.view(), rs);
    CHECK(ctdl::equal(a, b));
    // A small tensor gets the leading values of the same stream.
    ctdl::tensor<float, ctdl::shape<7>> small;
    ctdl::init::uniform(small, rs);
    CHECK(std::equal(small.begin(), small.end(), a.data()));
}

TEST_CASE("init with an rng takes consecutive ranges of its stream") {
    ctdl::rng g{ctdl::seed{4}, 9};
    ctdl::tensor<float, ctdl::shape<5, 3>> w;
    ctdl::tensor<float, ctdl::shape<3>> b;
    ctdl::init::uniform(w, g);
    ctdl::init::uniform(b, g);
    CHECK(g.state().counter == 18);
    const ctdl::random_stream rs{ctdl::seed{4}, 9};
    CHECK(w(4, 2) == rs.uniform<float>(14));
    CHECK(b(0) == rs.uniform<float>(15));
    CHECK(b(2) == rs.uniform<float>(17));
    // Normal draws start on a whole block.
    ctdl::tensor<double, ctdl::shape<3>> z;
    ctdl::init::normal(z, g);
    CHECK(g.state().counter == 20 + 8);
    CHECK(z(0) == rs.normal<double>(10));
    CHECK(z(2) == rs.normal<double>(12));
    // Replaying from the saved state reproduces everything.
    ctdl::rng h{ctdl::seed{4}, 9};
    ctdl::tensor<float, ctdl::shape<5, 3>> w2;
    ctdl::init::uniform(w2, h);
    CHECK(ctdl::equal(w, w2));
}

TEST_CASE("constant, zeros and ones") {
    ctdl::tensor<double, ctdl::shape<3, 4>> x;
    ctdl::init::constant(x, 2.5);
    CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 2.5; }));
    ctdl::init::ones(x.slice<1, 1>());
    CHECK(x(1, 3) == 1.0);
    CHECK(x(0, 3) == 2.5);
    ctdl::init::zeros(x);
    CHECK(std::all_of(x.begin(), x.end(), [](double v) { return v == 0.0; }));
}

TEST_CASE("gains follow torch.nn.init.calculate_gain") {
    using ctdl::init::nonlinearity;
    CHECK(ctdl::init::calculate_gain(nonlinearity::linear) == 1.0);
    CHECK(ctdl::init::calculate_gain(nonlinearity::sigmoid) == 1.0);
    CHECK(ctdl::init::calculate_gain(nonlinearity::tanh) == Approx(5.0 / 3));
    CHECK(ctdl::init::calculate_gain(nonlinearity::relu) == Approx(std::sqrt(2.0)));
    CHECK(ctdl::init::calculate_gain(nonlinearity::leaky_relu) == Approx(std::sqrt(2.0 / (1 + 1e-4))));
    CHECK(ctdl::init::calculate_gain(nonlinearity::leaky_relu, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3)));
    CHECK(ctdl::init::calculate_gain(nonlinearity::selu) == 0.75);
    constexpr auto f = ctdl::init::fans_of<ctdl::shape<16, 8, 3, 3>>();  // conv weight [out, in, kh, kw]
    STATIC_REQUIRE(f.in == 72);
    STATIC_REQUIRE(f.out == 144);
    STATIC_REQUIRE(ctdl::init::fans_of<ctdl::shape<10, 784>>().in == 784);
}

namespace {
// Every element in [-bound, bound], and the extremes within 1% of the bound (with 1e5
// uniform draws, the largest misses the bound by about bound · 2e-5).
template <class X>
void check_uniform_bound(const X& x, double bound) {
    const auto m = moments_of_tensor(x);
    INFO("bound " << bound << ", min " << m.min << ", max " << m.max);
    CHECK(m.min >= -bound);
    CHECK(m.max <= bound);
    CHECK(m.min < -0.99 * bound);
    CHECK(m.max > 0.99 * bound);
    // U(-b, b) has variance b² / 3.
    CHECK(m.var == Approx(bound * bound / 3).epsilon(0.02));
}
template <class X>
void check_normal_std(const X& x, double std) {
    const auto m = moments_of_tensor(x);
    INFO("std " << std << ", sample std " << std::sqrt(m.var));
    CHECK(std::abs(m.mean) < 5 * std / std::sqrt(double(ctdl::shape_of<X>::size)));
    CHECK(std::sqrt(m.var) == Approx(std).epsilon(0.02));
}
}  // namespace

TEST_CASE("Kaiming and Xavier initializers use PyTorch's bounds") {
    ctdl::tensor<float, ctdl::shape<250, 400>> w;
    const ctdl::seed s{123};

    ctdl::init::kaiming_uniform(w, {s, 1}, 400);
    check_uniform_bound(w, std::sqrt(2.0) * std::sqrt(3.0 / 400));
    ctdl::init::kaiming_uniform(w, {s, 2}, 400, 0.2);
    check_uniform_bound(w, std::sqrt(2.0 / (1 + 0.04)) * std::sqrt(3.0 / 400));
    CHECK(ctdl::init::kaiming_bound(400, 0.2) == Approx(std::sqrt(2.0 / 1.04) * std::sqrt(3.0 / 400)));

    ctdl::init::kaiming_normal(w, {s, 3}, 400);
    check_normal_std(w, std::sqrt(2.0) / std::sqrt(400.0));
    ctdl::init::kaiming_normal(w, {s, 4}, 400, 1.0);
    check_normal_std(w, 1.0 / std::sqrt(400.0));

    ctdl::init::xavier_uniform(w, {s, 5}, 400, 250);
    check_uniform_bound(w, std::sqrt(6.0 / 650));
    ctdl::init::xavier_uniform(w, {s, 6}, 400, 250, 5.0 / 3);
    check_uniform_bound(w, 5.0 / 3 * std::sqrt(6.0 / 650));
    CHECK(ctdl::init::xavier_bound(400, 250, 2.0) == Approx(2 * std::sqrt(6.0 / 650)));

    ctdl::init::xavier_normal(w, {s, 7}, 400, 250);
    check_normal_std(w, std::sqrt(2.0 / 650));
    ctdl::init::xavier_normal(w, {s, 8}, 400, 250, 0.5);
    check_normal_std(w, 0.5 * std::sqrt(2.0 / 650));
}

TEST_CASE("linear_weight and linear_bias reproduce torch.nn.Linear's distributions") {
    // Weight [out, in] = [250, 400]: U(-1/sqrt(400), 1/sqrt(400)) = U(-0.05, 0.05).
    ctdl::tensor<double, ctdl::shape<250, 400>> w;
    ctdl::init::linear_weight(w, {ctdl::seed{7}, 0});
    check_uniform_bound(w, 0.05);
    ctdl::tensor<double, ctdl::shape<250, 400>> w2;
    ctdl::init::linear_weight(w2, {ctdl::seed{7}, 0}, 400);
    CHECK(ctdl::equal(w, w2));

    ctdl::tensor<float, ctdl::shape<big>> b;
    ctdl::init::linear_bias(b, {ctdl::seed{7}, 1}, 400);
    check_uniform_bound(b, 0.05);
    ctdl::init::linear_bias(b, {ctdl::seed{7}, 1}, 0);
    CHECK(std::all_of(b.begin(), b.end(), [](float v) { return v == 0.0f; }));

    // A model-like layout: every parameter on its own stream of the model's seed.
    ctdl::tensor<float, ctdl::shape<10, 4>> w_a, w_b;
    ctdl::init::linear_weight(w_a, {ctdl::seed{7}, 0});
    ctdl::init::linear_weight(w_b, {ctdl::seed{7}, 2});
    CHECK(!ctdl::equal(w_a, w_b));
    CHECK(ctdl::max_abs_diff(w_a, ctdl::tensor<float, ctdl::shape<10, 4>>{}) <= 0.5);
}
