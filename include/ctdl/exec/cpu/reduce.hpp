#pragma once
// Reductions over contiguous, row-major memory. Every result is bitwise identical for any
// thread count: a single sum is never split between threads in a count-dependent way.
//
//   sum_rows(rows, cols, in, out)      out[r] = Σ_c in[r, c]        (threads split rows)
//   sum_cols(rows, cols, in, out)      out[c] = Σ_r in[r, c]        (threads split columns; the bias gradient)
//   reduce_rows(rows, cols, in, out, init, op)   out[r] = op(...op(op(init, in[r, 0]), in[r, 1])..., in[r, cols-1])
//   sum(n, in), sum_squares(n, in)     Σ x and Σ x² accumulated in double
//
// Sums of float accumulate in double (accumulator_t). Row sums use the lanes of
// ops/common/lanes.hpp, the order every op's math uses; column sums add rows in order 0, 1, ..., rows - 1.
// sum(n, in) cuts [0, n) into `sum_chunks` chunks fixed by n alone, sums each chunk with
// the lanes above, and adds the chunk totals in order; threads only decide who computes
// which chunk. `accumulate = true` adds the result to out: out = out + Σ.
// Each call is one pass::reduce.
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../../ops/common/lanes.hpp"
#include "../pass_count.hpp"
#include "../thread_pool.hpp"
#include "elementwise.hpp"
#include "pool.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {

using ops::accumulator_t;

/// The type of sum() and sum_squares(): long double for long double, else double.
template <class T>
using total_t = std::conditional_t<std::is_same_v<T, long double>, long double, double>;

/// Fixed number of chunks in sum() and sum_squares() (independent of the thread count).
inline constexpr std::size_t sum_chunks = 64;

namespace detail {

using ops::lanes;
using ops::lane_sum;

/// Σ_i f(in[i]) over [0, n) in chunks fixed by n (see the header comment).
template <class A, class T, class F>
A chunked_total(thread_pool& pool, std::size_t n, const T* in, const F& f) {
    A partial[sum_chunks]{};
    const std::size_t units = (n + lanes - 1) / lanes;  // whole groups of 16 elements
    for_item_blocks(pool, sum_chunks, n, [&](std::size_t k0, std::size_t k1) {
        for (std::size_t k = k0; k < k1; ++k) {
            const auto [ub, ue] = thread_pool::split(units, k, sum_chunks);
            const std::size_t b = ub * lanes, e = ue * lanes < n ? ue * lanes : n;
            if (b < e) partial[k] = lane_sum<A>(e - b, [&](std::size_t i) { return f(static_cast<A>(in[b + i])); });
        }
    });
    A total{};
    for (std::size_t k = 0; k < sum_chunks; ++k) total += partial[k];
    return total;
}

inline constexpr std::size_t col_tile = 128;  // columns summed together (accumulators on the stack)

}  // namespace detail

/// out[r] = Σ_c in[r·cols + c]   (out[r] += ... when accumulate). One pass::reduce.
template <class T>
void sum_rows(std::size_t rows, std::size_t cols, const T* in, T* out, bool accumulate = false,
              thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::reduce);
    detail::for_item_blocks(pool, rows, rows * cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const T* x = in + r * cols;
            const A s = detail::lane_sum<A>(cols, [x](std::size_t c) { return static_cast<A>(x[c]); });
            out[r] = static_cast<T>(accumulate ? static_cast<A>(out[r]) + s : s);
        }
    });
}

/// out[c] = Σ_r in[r·cols + c], rows added in order   (out[c] += ... when accumulate).
/// Threads split the columns. One pass::reduce.
template <class T>
void sum_cols(std::size_t rows, std::size_t cols, const T* in, T* out, bool accumulate = false,
              thread_pool& pool = cpu_pool()) {
    using A = accumulator_t<T>;
    record_pass(pass::reduce);
    const std::size_t units = (cols + detail::lanes - 1) / detail::lanes;
    detail::for_item_blocks(pool, units, rows * cols, [&](std::size_t u0, std::size_t u1) {
        const std::size_t c_end = u1 * detail::lanes < cols ? u1 * detail::lanes : cols;
        for (std::size_t c0 = u0 * detail::lanes; c0 < c_end; c0 += detail::col_tile) {
            const std::size_t w = c_end - c0 < detail::col_tile ? c_end - c0 : detail::col_tile;
            A acc[detail::col_tile]{};
            for (std::size_t r = 0; r < rows; ++r) {
                const T* x = in + r * cols + c0;
                for (std::size_t j = 0; j < w; ++j) acc[j] += static_cast<A>(x[j]);
            }
            T* o = out + c0;
            for (std::size_t j = 0; j < w; ++j) o[j] = static_cast<T>(accumulate ? static_cast<A>(o[j]) + acc[j] : acc[j]);
        }
    });
}

/// out[r] = op(...op(op(init, in[r, 0]), in[r, 1])..., in[r, cols - 1]), a left fold in
/// column order. Threads split rows. One pass::reduce.
template <class In, class Out, class Acc, class Op>
    requires std::invocable<const Op&, Acc, const In&> &&
             std::convertible_to<std::invoke_result_t<const Op&, Acc, const In&>, Acc> &&
             std::convertible_to<Acc, Out>
void reduce_rows(std::size_t rows, std::size_t cols, const In* in, Out* out, Acc init, const Op& op,
                 thread_pool& pool = cpu_pool()) {
    record_pass(pass::reduce);
    detail::for_item_blocks(pool, rows, rows * cols, [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            const In* x = in + r * cols;
            Acc a = init;
            for (std::size_t c = 0; c < cols; ++c) a = op(a, x[c]);
            out[r] = static_cast<Out>(a);
        }
    });
}

/// Σ_i in[i], accumulated in double (long double for long double). One pass::reduce.
template <class T>
total_t<T> sum(std::size_t n, const T* in, thread_pool& pool = cpu_pool()) {
    record_pass(pass::reduce);
    return detail::chunked_total<total_t<T>>(pool, n, in, [](total_t<T> x) { return x; });
}

/// Σ_i in[i]², accumulated in double (for gradient-norm clipping: ‖g‖ = sqrt(sum_squares)).
/// One pass::reduce.
template <class T>
total_t<T> sum_squares(std::size_t n, const T* in, thread_pool& pool = cpu_pool()) {
    record_pass(pass::reduce);
    return detail::chunked_total<total_t<T>>(pool, n, in, [](total_t<T> x) { return x * x; });
}

}  // namespace ctdl::cpu_kernels
