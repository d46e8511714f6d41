#pragma once
// What the losses share: the view concepts, the leading shape of a logits shape, and a
// deterministic parallel sum over rows or elements.
//
// Every loss takes tensors (or views) under any execution policy, all under the same one.
// Host policies (cpu) run the loss's own loops over raw memory; other policies (device)
// run the same arithmetic as CTDL_HD functors through Exec::for_each_index and Exec::sum.
#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../exec/cpu/pool.hpp"
#include "../exec/hd.hpp"

namespace ctdl::loss {

/// A tensor or view in host memory (the losses read and write it directly).
template <class X>
concept host_tensor = tensor_like<X> && std::remove_cvref_t<X>::exec_type::host_accessible;

/// A host tensor of floating-point elements.
template <class X>
concept host_floating_tensor = host_tensor<X> && std::floating_point<typename std::remove_cvref_t<X>::value_type>;

/// A standard integer type that can hold a class index (not bool, not a character type).
template <class I>
concept class_index = std::integral<I> && !std::same_as<I, bool> && !std::same_as<I, char> &&
                      !std::same_as<I, wchar_t> && !std::same_as<I, char8_t> && !std::same_as<I, char16_t> &&
                      !std::same_as<I, char32_t>;

/// A host tensor of class indices.
template <class X>
concept host_integer_tensor = host_tensor<X> && class_index<std::remove_cv_t<typename std::remove_cvref_t<X>::value_type>>;

/// A host tensor whose elements can be written (a gradient output).
template <class X>
concept writable_host_floating_tensor =
    host_floating_tensor<X> && requires(X& x) {
        { x.data() } -> std::same_as<typename std::remove_cvref_t<X>::value_type*>;
    };

/// A tensor or view of floating-point elements under any policy.
template <class X>
concept floating_tensor = tensor_like<X> && std::floating_point<typename std::remove_cvref_t<X>::value_type>;

/// A tensor or view of class indices under any policy.
template <class X>
concept integer_tensor = tensor_like<X> && class_index<std::remove_cv_t<typename std::remove_cvref_t<X>::value_type>>;

/// A floating-point tensor whose elements can be written (a gradient output), under any policy.
template <class X>
concept writable_floating_tensor =
    floating_tensor<X> && requires(X& x) {
        { x.data() } -> std::same_as<typename std::remove_cvref_t<X>::value_type*>;
    };

template <class X>
using exec_of = typename std::remove_cvref_t<X>::exec_type;

/// A loss reads and writes its tensors in place: they must all live under one policy.
template <class First, class... Rest>
struct loss_tensors_must_live_under_one_policy {
    static_assert((std::is_same_v<First, Rest> && ...),
                  "loss: the tensors of one call live under different execution policies (move them with "
                  "ctdl::to<Exec> first)");
    static constexpr bool value = true;
};

/// shape<Rows...> for S = shape<Rows..., C>: the shape of one target per row.
template <shape_like S>
    requires(S::rank >= 1)
using leading_shape = shape_from<ctdl::detail::drop_back_extents<1, S>()>;

template <class X>
using value_of = typename std::remove_cvref_t<X>::value_type;

namespace detail {

/// Element i of p, as a double (Exec::sum over a scratch buffer).
template <class T>
struct read_as_double {
    const T* p;
    CTDL_HD double operator()(std::size_t i) const { return static_cast<double>(p[i]); }
};

/// At least n doubles of Exec's memory: the calling thread's scratch for per-row values,
/// grown when a call needs more and otherwise reused (no allocation after the first call
/// of a training loop). Valid until the thread's next call.
template <class Exec>
double* row_scratch(std::size_t n) {
    using buffer = typename Exec::template buffer<double>;
    static thread_local buffer b;
    if (b.size() < n) {
        buffer bigger(n);
        b.swap(bigger);
    }
    return b.data();
}

/// out[i] = f(i): a per-row value kept for a later Exec::sum.
template <class F>
struct store_in {
    F f;
    double* out;
    CTDL_HD void operator()(std::size_t i) const { out[i] = f(i); }
};

/// Sums below this much work (elements touched) run on the calling thread.
inline constexpr std::size_t parallel_work = std::size_t{1} << 16;
/// The items are cut into at most this many chunks, however many threads there are.
inline constexpr std::size_t max_chunks = 64;

/// Σ over [0, count) of f(begin, end) -> double, where f handles a chunk of items. The
/// chunks depend only on count (never on the thread count), and their partial sums are
/// added in order, so the result is bitwise the same on any number of threads. Work is
/// the number of elements touched, to decide whether threads are worth it.
template <class F>
double chunked_sum(std::size_t count, std::size_t work, F&& f) {
    if (count == 0) return 0;
    const std::size_t chunks = std::min(count, max_chunks);
    std::array<double, max_chunks> partial{};
    auto chunk_range = [&](std::size_t c0, std::size_t c1) {
        for (std::size_t c = c0; c < c1; ++c) {
            const auto [b, e] = thread_pool::split(count, c, chunks);
            partial[c] = f(b, e);
        }
    };
    thread_pool& pool = cpu_pool();
    if (work >= parallel_work && pool.size() > 1)
        pool.run([&](std::size_t t, std::size_t n) {
            const auto [c0, c1] = thread_pool::split(chunks, t, n);
            chunk_range(c0, c1);
        });
    else
        chunk_range(0, chunks);
    double sum = 0;
    for (std::size_t c = 0; c < chunks; ++c) sum += partial[c];
    return sum;
}

}  // namespace detail
}  // namespace ctdl::loss
