#pragma once
// Parameter initializers, with the formulas of PyTorch's torch.nn.init.
//
//   ctdl::random_stream rs{seed, parameter_index};   // one stream per parameter tensor
//   ctdl::init::kaiming_uniform(w, rs, fan_in);      // U(-b, b), b = gain · sqrt(3 / fan_in)
//   ctdl::init::linear_weight(w, rs);                // as torch.nn.Linear.reset_parameters
//   ctdl::init::zeros(b);
//
// Element i (row-major flat index) of the tensor gets draw i of the stream, so the
// values depend on (seed, stream, shape) only: not on the thread count, nor on the order
// in which parts were filled. Each initializer also accepts a ctdl::rng&, which hands out
// a fresh range of its stream and advances past it.
//
// The values are computed in float for float tensors and in double for everything else,
// then converted to the element type.
#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../exec/cpu/pool.hpp"
#include "../exec/pass_count.hpp"
#include "random.hpp"
#include "shape.hpp"
#include "tensor.hpp"

namespace ctdl::init {

/// A tensor or view whose elements the host can write (tensor_like, host-accessible).
template <class X>
concept host_tensor = tensor_like<X> && std::remove_cvref_t<X>::exec_type::host_accessible &&
                      !std::is_const_v<std::remove_pointer_t<decltype(std::declval<X&>().data())>>;

// ---------------------------------------------------------------- gains and fans

/// torch.nn.init.calculate_gain's nonlinearities.
enum class nonlinearity { linear, sigmoid, tanh, relu, leaky_relu, selu };

/// The recommended gain of a nonlinearity: 1 (linear, sigmoid), 5/3 (tanh), sqrt 2
/// (relu), sqrt(2 / (1 + a²)) (leaky_relu with negative slope a), 3/4 (selu).
inline double calculate_gain(nonlinearity f, double a = 0.01) {
    switch (f) {
        case nonlinearity::tanh: return 5.0 / 3.0;
        case nonlinearity::relu: return std::sqrt(2.0);
        case nonlinearity::leaky_relu: return std::sqrt(2.0 / (1.0 + a * a));
        case nonlinearity::selu: return 0.75;
        default: return 1.0;
    }
}

/// PyTorch's fan convention for a weight of shape [out, in, k...]:
///   fan_in = in · Π k,  fan_out = out · Π k.   (A rank-1 shape has no fans.)
struct fans {
    std::size_t in, out;
};
template <shape_like S>
    requires(S::rank >= 2)
constexpr fans fans_of() {
    const std::size_t receptive = S::size / (S::extents[0] * S::extents[1]);
    return {S::extents[1] * receptive, S::extents[0] * receptive};
}

// ---------------------------------------------------------------- where draws come from

/// The random numbers an initializer uses: a random_stream (draw i fills element i), or
/// an rng, which hands out the next unused range of its stream and moves past it.
/// Converts from all the spellings a caller uses:
///   init::uniform(x, rs, ...)  init::uniform(x, ctdl::seed{7}, ...)
///   init::uniform(x, {ctdl::seed{7}, stream}, ...)  init::uniform(x, g, ...)  (ctdl::rng& g)
class source {
public:
    source(random_stream rs) noexcept : rs_(rs) {}
    source(ctdl::seed s, std::uint64_t stream = 0) noexcept : rs_(s, stream) {}
    source(rng& g) noexcept : rs_(g.stream()), g_(&g) {}

    const random_stream& stream() const noexcept { return rs_; }

    /// The first draw index of n uniform draws of type C (float: 1 word each, else 2).
    template <class C>
    std::uint64_t take_uniform(std::size_t n) const noexcept {
        if (!g_) return 0;
        constexpr std::uint64_t words = std::is_same_v<C, float> ? 1 : 2;
        return g_->take(words * n, words) / words;
    }
    /// The first draw index of n normal draws (2 words each, in whole 4-word blocks).
    std::uint64_t take_normal(std::size_t n) const noexcept {
        if (!g_) return 0;
        return g_->take(2 * (n + n % 2), 4) / 2;
    }

private:
    random_stream rs_;
    rng* g_ = nullptr;
};

// ---------------------------------------------------------------- the fill engine

namespace detail {

template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, float>, float, double>;

inline constexpr std::size_t parallel_min = 1 << 15;  // elements; below this, one thread

// x[i] = f(i) for every flat index i, in parallel when large. Any partition gives the
// same values because f is a pure function of i. Each worker gets its own copy of f, so
// f may cache the last Philox block it computed (consecutive i share a block).
template <class T, class F>
void generate(T* x, std::size_t n, const F& f) {
    record_pass(pass::other);
    auto body = [&](std::size_t b, std::size_t e) {
        F g = f;
        for (std::size_t i = b; i < e; ++i) x[i] = g(i);
    };
    if (n < parallel_min) body(0, n);
    else cpu_pool().parallel_for(n, body);
}

// Draw `first + i` of a stream, remembering the last block computed.
struct cached_stream {
    random_stream rs;
    std::uint64_t first;
    std::uint64_t block = ~std::uint64_t{0};
    philox::counter words{};

    const philox::counter& block_of(std::uint64_t b) {
        if (b != block) {
            block = b;
            words = rs.block(b);
        }
        return words;
    }
    // Exactly random_stream::uniform<C>(first + i).
    template <class C>
    C uniform(std::size_t i) {
        const std::uint64_t k = first + i;
        if constexpr (std::is_same_v<C, float>) {
            return uniform_float_from_bits(block_of(k / 4)[k % 4]);
        } else {
            const auto& w = block_of(k / 2);
            const std::size_t l = 2 * (k % 2);
            return static_cast<C>(uniform_double_from_bits(std::uint64_t{w[l]} | std::uint64_t{w[l + 1]} << 32));
        }
    }
};
struct cached_normal {
    random_stream rs;
    std::uint64_t first;
    std::uint64_t pair = ~std::uint64_t{0};
    std::array<double, 2> z{};
    // Exactly random_stream::normal<double>(first + i).
    double operator()(std::size_t i) {
        const std::uint64_t k = first + i;
        if (k / 2 != pair) {
            pair = k / 2;
            z = box_muller(rs.block(pair));
        }
        return z[k % 2];
    }
};

// U[lo, hi): element i = lo + (hi - lo) · u_i.
template <class T>
void uniform(T* x, std::size_t n, random_stream rs, std::uint64_t first, double lo, double hi) {
    using C = compute_t<T>;
    const C l = static_cast<C>(lo), w = static_cast<C>(hi - lo);
    generate(x, n, [=, c = cached_stream{rs, first}](std::size_t i) mutable {
        // An explicit fma: the same bits in every build (a compiler may or may not fuse l + w·u).
        return static_cast<T>(std::fma(w, c.template uniform<C>(i), l));
    });
}

// N(mean, std²): element i = mean + std · z_i.
template <class T>
void normal(T* x, std::size_t n, random_stream rs, std::uint64_t first, double mean, double std) {
    using C = compute_t<T>;
    const C m = static_cast<C>(mean), s = static_cast<C>(std);
    generate(x, n, [=, c = cached_normal{rs, first}](std::size_t i) mutable {
        return static_cast<T>(std::fma(s, static_cast<C>(c(i)), m));
    });
}

}  // namespace detail

// ---------------------------------------------------------------- constant fills

/// Every element = value.
template <host_tensor X>
void constant(X&& x, double value) {
    using T = typename std::remove_cvref_t<X>::value_type;
    ctdl::fill(x, static_cast<T>(value));
}
template <host_tensor X>
void zeros(X&& x) { constant(x, 0.0); }
template <host_tensor X>
void ones(X&& x) { constant(x, 1.0); }

// ---------------------------------------------------------------- uniform / normal

/// U[lo, hi) from stream rs (element i from draw i).
template <host_tensor X>
void uniform(X&& x, source src, double lo = 0.0, double hi = 1.0) {
    using C = detail::compute_t<typename std::remove_cvref_t<X>::value_type>;
    const std::uint64_t first = src.take_uniform<C>(shape_of<X>::size);
    detail::uniform(x.data(), shape_of<X>::size, src.stream(), first, lo, hi);
}

/// N(mean, std²) from stream rs (element i from draw i).
template <host_tensor X>
void normal(X&& x, source src, double mean = 0.0, double std = 1.0) {
    const std::uint64_t first = src.take_normal(shape_of<X>::size);
    detail::normal(x.data(), shape_of<X>::size, src.stream(), first, mean, std);
}

// ---------------------------------------------------------------- Kaiming (He et al., 2015)

/// The bound and std of Kaiming init in fan_in mode with the leaky-ReLU gain of slope a:
///   gain = sqrt(2 / (1 + a²)),  std = gain / sqrt(fan_in),  bound = sqrt 3 · std.
inline double kaiming_std(std::size_t fan_in, double a = 0.0) {
    return calculate_gain(nonlinearity::leaky_relu, a) / std::sqrt(static_cast<double>(fan_in));
}
inline double kaiming_bound(std::size_t fan_in, double a = 0.0) { return std::sqrt(3.0) * kaiming_std(fan_in, a); }

/// U(-b, b), b = sqrt(2 / (1 + a²)) · sqrt(3 / fan_in)   (torch.nn.init.kaiming_uniform_).
template <host_tensor X>
void kaiming_uniform(X&& x, source r, std::size_t fan_in, double a = 0.0) {
    const double b = kaiming_bound(fan_in, a);
    uniform(x, r, -b, b);
}
/// N(0, σ²), σ = sqrt(2 / (1 + a²)) / sqrt(fan_in)   (torch.nn.init.kaiming_normal_).
template <host_tensor X>
void kaiming_normal(X&& x, source r, std::size_t fan_in, double a = 0.0) {
    normal(x, r, 0.0, kaiming_std(fan_in, a));
}

// ---------------------------------------------------------------- Xavier (Glorot & Bengio, 2010)

/// std = gain · sqrt(2 / (fan_in + fan_out)),  bound = sqrt 3 · std = gain · sqrt(6 / (fan_in + fan_out)).
inline double xavier_std(std::size_t fan_in, std::size_t fan_out, double gain = 1.0) {
    return gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out));
}
inline double xavier_bound(std::size_t fan_in, std::size_t fan_out, double gain = 1.0) {
    return std::sqrt(3.0) * xavier_std(fan_in, fan_out, gain);
}

/// U(-b, b), b = gain · sqrt(6 / (fan_in + fan_out))   (torch.nn.init.xavier_uniform_).
template <host_tensor X>
void xavier_uniform(X&& x, source r, std::size_t fan_in, std::size_t fan_out, double gain = 1.0) {
    const double b = xavier_bound(fan_in, fan_out, gain);
    uniform(x, r, -b, b);
}
/// N(0, σ²), σ = gain · sqrt(2 / (fan_in + fan_out))   (torch.nn.init.xavier_normal_).
template <host_tensor X>
void xavier_normal(X&& x, source r, std::size_t fan_in, std::size_t fan_out, double gain = 1.0) {
    normal(x, r, 0.0, xavier_std(fan_in, fan_out, gain));
}

// ---------------------------------------------------------------- torch.nn.Linear

/// torch.nn.Linear's weight: kaiming_uniform with a = sqrt 5, i.e. gain = sqrt(1/3) and
/// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <host_tensor X>
void linear_weight(X&& w, source r, std::size_t fan_in) {
    kaiming_uniform(w, r, fan_in, std::sqrt(5.0));
}
/// The same, with fan_in from the PyTorch layout [out, in] of the weight's shape.
template <host_tensor X>
    requires(shape_of<X>::rank >= 2)
void linear_weight(X&& w, source r) {
    linear_weight(w, r, fans_of<shape_of<X>>().in);
}

/// torch.nn.Linear's bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); zeros when fan_in = 0.
template <host_tensor X>
void linear_bias(X&& b, source r, std::size_t fan_in) {
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    uniform(b, r, -bound, bound);
}

}  // namespace ctdl::init
