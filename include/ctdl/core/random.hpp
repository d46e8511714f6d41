#pragma once
// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel
// random numbers: as easy as 1, 2, 3", SC'11).
//
// A counter-based generator is a keyed bijection of a 128-bit counter, so the number at
// (seed, stream, index) is a pure function of those three values. A tensor filled in
// parallel therefore holds the same numbers for every thread count and every order of
// generation, and "state" is just a position, which a checkpoint stores as three integers.
//
//   ctdl::random_stream rs{ctdl::seed{7}, 3};   // stream 3 of seed 7 (e.g. parameter #3)
//   float u = rs.uniform<float>(i);             // U[0, 1), 24 random bits
//   double z = rs.normal<double>(i);            // N(0, 1), Box-Muller
//
//   ctdl::rng g{ctdl::seed{7}};                 // sequential convenience generator
//   auto saved = g.state();                     // {seed, stream, counter}: a POD
//   float a = g.next_uniform(), b = g.next_normal();
//   g = ctdl::rng{saved};                       // replays a and b
//
// Layout of a stream. One Philox call with key = seed and counter = (block, stream)
// gives four 32-bit words: words 4b .. 4b+3 of the stream. Every accessor below names
// which words it reads:
//   uint32(i)        word i
//   uint64(i)        words 2i (low half) and 2i+1 (high half)
//   uniform<float>   (uint32(i) >> 8) · 2^-24         ∈ [0, 1 - 2^-24]
//   uniform<double>  (uint64(i) >> 11) · 2^-53        ∈ [0, 1 - 2^-53]
//   normal(i)        pair p = i / 2 reads words 4p .. 4p+3 (= block p):
//                    u1 = 53 bits of words 4p, 4p+1; u2 = 53 bits of words 4p+2, 4p+3;
//                    r = sqrt(-2 ln(1 - u1)), θ = 2π u2;
//                    normal(2p) = r cos θ, normal(2p+1) = r sin θ   (computed in double)
// The index spaces overlap, so use one kind of draw per stream (or per disjoint index
// range); rng does this bookkeeping for sequential use.
#include <array>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <numbers>

namespace ctdl {

/// The seed of a model or a run. An aggregate: ctdl::seed{7}.
struct seed {
    std::uint64_t value;
};

// ---------------------------------------------------------------- Philox4x32-10

namespace philox {

using counter = std::array<std::uint32_t, 4>;
using key = std::array<std::uint32_t, 2>;

inline constexpr std::uint32_t m0 = 0xD2511F53u;  // round multipliers
inline constexpr std::uint32_t m1 = 0xCD9E8D57u;
inline constexpr std::uint32_t w0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt 3 - 1)
inline constexpr std::uint32_t w1 = 0xBB67AE85u;
inline constexpr int rounds = 10;

/// One round: (hi0, lo0) = m0 · c0, (hi1, lo1) = m1 · c2 (64-bit products), then
///   c' = (hi1 ⊕ c1 ⊕ k0,  lo1,  hi0 ⊕ c3 ⊕ k1,  lo0).
constexpr counter round(const counter& c, const key& k) noexcept {
    const std::uint64_t p0 = std::uint64_t{m0} * c[0];
    const std::uint64_t p1 = std::uint64_t{m1} * c[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

/// Philox4x32-10: ten rounds, the key bumped by (w0, w1) between consecutive rounds.
constexpr counter philox4x32_10(counter c, key k) noexcept {
    c = round(c, k);
    for (int r = 1; r < rounds; ++r) {
        k[0] += w0;
        k[1] += w1;
        c = round(c, k);
    }
    return c;
}

}  // namespace philox

// ---------------------------------------------------------------- bits to numbers

/// 24 high bits of w as a float in [0, 1): every value is a multiple of 2^-24.
constexpr float uniform_float_from_bits(std::uint32_t w) noexcept {
    return static_cast<float>(w >> 8) * 0x1.0p-24f;
}
/// 53 high bits of w as a double in [0, 1): every value is a multiple of 2^-53.
constexpr double uniform_double_from_bits(std::uint64_t w) noexcept {
    return static_cast<double>(w >> 11) * 0x1.0p-53;
}

/// Box–Muller: two independent N(0, 1) values from four words of a Philox block.
inline std::array<double, 2> box_muller(const philox::counter& w) noexcept {
    const double u1 = uniform_double_from_bits(std::uint64_t{w[0]} | std::uint64_t{w[1]} << 32);
    const double u2 = uniform_double_from_bits(std::uint64_t{w[2]} | std::uint64_t{w[3]} << 32);
    // 1 - u1 ∈ [2^-53, 1]: the logarithm is finite, so |z| <= sqrt(2 · 53 ln 2) ≈ 8.57.
    const double r = std::sqrt(-2.0 * std::log(1.0 - u1));
    const double theta = 2.0 * std::numbers::pi * u2;
    return {r * std::cos(theta), r * std::sin(theta)};
}

// ---------------------------------------------------------------- random_stream

/// Stream `stream` of seed `seed`: the pure function index -> random value.
/// Trivially copyable; two of them with equal members give equal numbers.
struct random_stream {
    std::uint64_t seed_value = 0;
    std::uint64_t stream = 0;

    constexpr random_stream() noexcept = default;
    constexpr random_stream(ctdl::seed s, std::uint64_t stream_id = 0) noexcept
        : seed_value(s.value), stream(stream_id) {}
    constexpr random_stream(std::uint64_t s, std::uint64_t stream_id) noexcept : seed_value(s), stream(stream_id) {}

    constexpr ctdl::seed seed() const noexcept { return {seed_value}; }

    /// Words 4·b .. 4·b+3: Philox with key = seed, counter = (b lo, b hi, stream lo, stream hi).
    constexpr philox::counter block(std::uint64_t b) const noexcept {
        return philox::philox4x32_10(
            {static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32), static_cast<std::uint32_t>(stream),
             static_cast<std::uint32_t>(stream >> 32)},
            {static_cast<std::uint32_t>(seed_value), static_cast<std::uint32_t>(seed_value >> 32)});
    }

    /// Word i of the stream.
    constexpr std::uint32_t uint32(std::uint64_t i) const noexcept { return block(i / 4)[i % 4]; }

    /// Words 2i (low half) and 2i+1 (high half).
    constexpr std::uint64_t uint64(std::uint64_t i) const noexcept {
        const auto w = block(i / 2);
        const std::size_t l = 2 * (i % 2);
        return std::uint64_t{w[l]} | std::uint64_t{w[l + 1]} << 32;
    }

    /// U[0, 1): 24 bits for float (from word i), 53 bits for double (from uint64(i)).
    template <std::floating_point T = float>
    constexpr T uniform(std::uint64_t i) const noexcept {
        if constexpr (std::same_as<T, float>)
            return uniform_float_from_bits(uint32(i));
        else
            return static_cast<T>(uniform_double_from_bits(uint64(i)));
    }

    /// N(0, 1): member i % 2 of the Box–Muller pair from block i / 2 (computed in double).
    template <std::floating_point T = float>
    T normal(std::uint64_t i) const noexcept {
        return static_cast<T>(box_muller(block(i / 2))[i % 2]);
    }

    /// A child stream for sub-index k: a hash of (stream, k) that does not depend on the
    /// seed. Use it to give each part of a model its own stream, e.g. child(layer).child(param).
    constexpr random_stream child(std::uint64_t k) const noexcept {
        // Philox under a fixed key is a bijection of the 128-bit counter (k, stream); its
        // first 64 output bits serve as a well-mixed stream id.
        constexpr philox::key fork_key{0x666F726Bu /* "fork" */, 0x63746C64u /* "ctdl" */};
        const auto w = philox::philox4x32_10({static_cast<std::uint32_t>(k), static_cast<std::uint32_t>(k >> 32),
                                              static_cast<std::uint32_t>(stream),
                                              static_cast<std::uint32_t>(stream >> 32)},
                                             fork_key);
        return {seed_value, std::uint64_t{w[0]} | std::uint64_t{w[1]} << 32};
    }

    friend constexpr bool operator==(const random_stream&, const random_stream&) = default;
};

// ---------------------------------------------------------------- rng (sequential)

namespace detail {
/// The 128-bit product a · b as {high, low} 64-bit halves (schoolbook on 32-bit limbs).
constexpr std::array<std::uint64_t, 2> mul_wide(std::uint64_t a, std::uint64_t b) noexcept {
    const std::uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const std::uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const std::uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    return {p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (mid << 32) | (p00 & 0xFFFFFFFFu)};
}
}  // namespace detail

/// The whole state of an rng: a POD a checkpoint stores as three integers. `counter`
/// counts 32-bit words of the stream already consumed.
struct rng_state {
    std::uint64_t seed = 0;
    std::uint64_t stream = 0;
    std::uint64_t counter = 0;
    friend constexpr bool operator==(const rng_state&, const rng_state&) = default;
};

/// A sequential generator over one random_stream. Each draw takes the next unused words
/// of the stream, aligned so that it reads exactly what random_stream's accessor of the
/// same kind reads:
///   next_u32 / next_uniform<float>:  1 word;      next_u64 / next_uniform<double>: 2 words
///   next_normal:                     a whole block (4 words; the second value of the pair is dropped)
/// Draws with the same state give the same numbers, on any machine.
class rng {
public:
    constexpr rng() noexcept = default;
    constexpr rng(ctdl::seed s, std::uint64_t stream = 0) noexcept : s_{s.value, stream, 0} {}
    constexpr rng(random_stream rs) noexcept : s_{rs.seed_value, rs.stream, 0} {}
    constexpr explicit rng(const rng_state& s) noexcept : s_(s) {}

    constexpr const rng_state& state() const noexcept { return s_; }
    constexpr void set_state(const rng_state& s) noexcept { s_ = s; }
    constexpr random_stream stream() const noexcept { return {s_.seed, s_.stream}; }

    constexpr std::uint32_t next_u32() noexcept { return stream().uint32(s_.counter++); }

    constexpr std::uint64_t next_u64() noexcept {
        const std::uint64_t i = take(2, 2);
        return stream().uint64(i / 2);
    }

    /// U[0, 1) (24 bits for float, 53 for double).
    template <std::floating_point T = float>
    constexpr T next_uniform() noexcept {
        if constexpr (std::same_as<T, float>)
            return uniform_float_from_bits(next_u32());
        else
            return static_cast<T>(uniform_double_from_bits(next_u64()));
    }
    /// U[lo, hi).
    template <std::floating_point T>
    constexpr T next_uniform(T lo, T hi) noexcept {
        return lo + (hi - lo) * next_uniform<T>();
    }

    /// N(0, 1).
    template <std::floating_point T = float>
    T next_normal() noexcept {
        const std::uint64_t i = take(4, 4);
        return stream().normal<T>(i / 2);
    }
    /// N(mean, std²).
    template <std::floating_point T>
    T next_normal(T mean, T std) noexcept {
        return mean + std * next_normal<T>();
    }

    /// An integer uniform on [0, n) without bias (n >= 1), by Lemire's multiply-and-reject:
    /// m = x · n (128-bit); the high half is the result unless the low half falls in the
    /// 2^64 mod n values that would over-represent some results.
    constexpr std::uint64_t next_below(std::uint64_t n) noexcept {
        if (n <= 1) return 0;
        const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
        for (;;) {
            const auto [hi, lo] = detail::mul_wide(next_u64(), n);
            if (lo >= threshold) return hi;
        }
    }

    /// A new generator on a child stream, keyed by the current position; this generator
    /// advances past one block, so consecutive splits differ.
    constexpr rng split() noexcept {
        const std::uint64_t i = take(4, 4);
        return rng{stream().child(i / 4)};
    }

    /// Reserves `count` words, the first at the next multiple of `align` (>= 1), for bulk
    /// generation with the pure accessors: returns that word index and moves past the words.
    constexpr std::uint64_t take(std::uint64_t count, std::uint64_t align = 1) noexcept {
        const std::uint64_t first = (s_.counter + align - 1) / align * align;
        s_.counter = first + count;
        return first;
    }

    friend constexpr bool operator==(const rng&, const rng&) = default;

private:
    rng_state s_{};
};

}  // namespace ctdl
