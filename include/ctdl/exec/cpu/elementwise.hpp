#pragma once
// Elementwise maps over contiguous memory: one pass, any number of inputs.
//
//   map(n, out, f, a, b)        out[i] = f(a[i], b[i])           (any number of inputs)
//   map_inplace(n, x, f, a)     x[i]   = f(x[i], a[i])
//
// Work of fewer than parallel_min_elements elements runs on the calling thread; larger
// work is split statically over the pool in blocks of 16 elements (whole cache lines of
// float), so each element is computed by the same code whatever the thread count, and
// the results are bitwise identical. f is called concurrently from several threads: it
// must be a pure function of its arguments.
//
// out may be exactly one of the inputs (out == a is an in-place map); partially
// overlapping ranges are not allowed. The loops are plain contiguous loops, which g++
// vectorizes for simple lambdas (it checks for the exact-alias case at run time).
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../pass_count.hpp"
#include "../thread_pool.hpp"
#include "pool.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {

/// Kernels with less work than this (in elements) run on the calling thread: waking the
/// pool costs more than it saves.
inline constexpr std::size_t parallel_min_elements = std::size_t{1} << 15;

namespace detail {

/// body(b, e) over [0, count) items: serially when `work` (elements) is small, else one
/// contiguous block per thread of the pool (thread_pool::split).
template <class F>
void for_item_blocks(thread_pool& pool, std::size_t count, std::size_t work, const F& body) {
    if (count == 0) return;
    if (work < parallel_min_elements || count < 2 || pool.size() < 2)
        body(std::size_t{0}, count);
    else
        pool.parallel_for(count, body);
}

inline constexpr std::size_t map_grain = 16;  // elements per unit of the static partition

template <class T, class F, class... In>
void map_range(std::size_t b, std::size_t e, T* out, const F& f, const In*... in) {
    for (std::size_t i = b; i < e; ++i) out[i] = static_cast<T>(f(in[i]...));
}

template <class T, class F, class... In>
void map_parallel(thread_pool& pool, std::size_t n, T* out, const F& f, const In*... in) {
    const std::size_t units = (n + map_grain - 1) / map_grain;
    for_item_blocks(pool, units, n, [&](std::size_t ub, std::size_t ue) {
        const std::size_t b = ub * map_grain, e = ue * map_grain < n ? ue * map_grain : n;
        map_range(b, e, out, f, in...);
    });
}

}  // namespace detail

/// out[i] = f(in[i]...) for i in [0, n), on `pool`. One pass::map.
template <class T, class F, class... In>
    requires std::invocable<const F&, const In&...> &&
             std::convertible_to<std::invoke_result_t<const F&, const In&...>, T>
void map(thread_pool& pool, std::size_t n, T* out, const F& f, const In*... in) {
    record_pass(pass::map);
    detail::map_parallel(pool, n, out, f, in...);
}

/// out[i] = f(in[i]...) for i in [0, n), on cpu_pool(). One pass::map.
template <class T, class F, class... In>
    requires std::invocable<const F&, const In&...> &&
             std::convertible_to<std::invoke_result_t<const F&, const In&...>, T>
void map(std::size_t n, T* out, const F& f, const In*... in) {
    map(cpu_pool(), n, out, f, in...);
}

/// x[i] = f(x[i], in[i]...) for i in [0, n), on `pool`. One pass::map.
template <class T, class F, class... In>
    requires std::invocable<const F&, const T&, const In&...> &&
             std::convertible_to<std::invoke_result_t<const F&, const T&, const In&...>, T>
void map_inplace(thread_pool& pool, std::size_t n, T* x, const F& f, const In*... in) {
    record_pass(pass::map);
    detail::map_parallel(pool, n, x, f, static_cast<const T*>(x), in...);
}

/// x[i] = f(x[i], in[i]...) for i in [0, n), on cpu_pool(). One pass::map.
template <class T, class F, class... In>
    requires std::invocable<const F&, const T&, const In&...> &&
             std::convertible_to<std::invoke_result_t<const F&, const T&, const In&...>, T>
void map_inplace(std::size_t n, T* x, const F& f, const In*... in) {
    map_inplace(cpu_pool(), n, x, f, in...);
}

}  // namespace ctdl::cpu_kernels
