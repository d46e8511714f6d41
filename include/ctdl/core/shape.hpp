#pragma once
// shape<Dims...>: a tensor shape whose extents exist only at compile time.
//
// Type-level rules live here: matmul, broadcast, reshape, concat, transpose. A rule
// that is broken fails in a static_assert inside a class template whose *name* carries
// the shapes involved, so the compiler's first lines read e.g.
//   In instantiation of 'struct ctdl::matmul_inner_extents_must_match<ctdl::shape<3, 4>, ctdl::shape<5, 6>>':
//   error: static assertion failed: matmul: inner extents differ (A is [M, K], B must be [K, N])
#include <array>
#include <cstddef>
#include <type_traits>

namespace ctdl {

template <std::size_t... Dims>
struct shape {
    static_assert(((Dims > 0) && ...), "shape: every extent must be at least 1");

    static constexpr std::size_t rank = sizeof...(Dims);
    static constexpr std::size_t size = (std::size_t{1} * ... * Dims);
    static constexpr std::array<std::size_t, rank> extents{Dims...};

    /// Row-major strides, in elements.
    static constexpr std::array<std::size_t, rank> strides = [] {
        std::array<std::size_t, rank> s{};
        std::size_t acc = 1;
        for (std::size_t i = rank; i-- > 0;) {
            s[i] = acc;
            acc *= extents[i];
        }
        return s;
    }();

    template <std::size_t I>
    static constexpr std::size_t extent = [] {
        static_assert(I < rank, "shape::extent<I>: axis I is out of range for this shape");
        return extents[I];
    }();
};

// ---------------------------------------------------------------- traits

template <class S>
struct is_shape : std::false_type {};
template <std::size_t... D>
struct is_shape<shape<D...>> : std::true_type {};

/// Anything of the form shape<Dims...>.
template <class S>
concept shape_like = is_shape<S>::value;

namespace detail {

// Shape from a constexpr array (used by the type-level rules below). The extents pass
// through shape_values as plain numbers: nvcc's host-code generator would otherwise spell
// the shape by its argument expressions (Arr[0], ...), which do not compile.
template <std::size_t... D>
struct shape_values {
    using type = shape<D...>;
};
template <auto Arr, class = std::make_index_sequence<Arr.size()>>
struct shape_from_array;
template <auto Arr, std::size_t... I>
struct shape_from_array<Arr, std::index_sequence<I...>> {
    using type = typename shape_values<Arr[I]...>::type;
};

}  // namespace detail

/// The shape with extents Arr (a constexpr std::array<std::size_t, N>).
template <auto Arr>
using shape_from = typename detail::shape_from_array<Arr>::type;

// ---------------------------------------------------------------- drop / append

namespace detail {
template <std::size_t N, class S>
constexpr auto drop_front_extents() {
    std::array<std::size_t, S::rank - N> out{};
    for (std::size_t i = 0; i < S::rank - N; ++i) out[i] = S::extents[i + N];
    return out;
}
template <std::size_t N, class S>
constexpr auto drop_back_extents() {
    std::array<std::size_t, S::rank - N> out{};
    for (std::size_t i = 0; i < S::rank - N; ++i) out[i] = S::extents[i];
    return out;
}
}  // namespace detail

/// The shape without its first N axes (shape<2,3,4> -> shape<3,4> for N = 1).
template <std::size_t N, shape_like S>
    requires(N < S::rank)
using drop_front = shape_from<detail::drop_front_extents<N, S>()>;

namespace detail {
template <std::size_t N, class S>
constexpr auto prepend_extents() {
    std::array<std::size_t, S::rank + 1> out{N};
    for (std::size_t i = 0; i < S::rank; ++i) out[i + 1] = S::extents[i];
    return out;
}
template <class S, std::size_t N>
constexpr auto append_extents() {
    std::array<std::size_t, S::rank + 1> out{};
    for (std::size_t i = 0; i < S::rank; ++i) out[i] = S::extents[i];
    out[S::rank] = N;
    return out;
}
}  // namespace detail

/// shape<N, Dims...> for S = shape<Dims...>.
template <std::size_t N, shape_like S>
using prepend = shape_from<detail::prepend_extents<N, S>()>;

/// shape<Dims..., N> for S = shape<Dims...>.
template <shape_like S, std::size_t N>
using append = shape_from<detail::append_extents<S, N>()>;

/// The same shape with its last extent replaced by N.
template <shape_like S, std::size_t N>
    requires(S::rank >= 1)
using with_last = append<shape_from<detail::drop_back_extents<1, S>()>, N>;

template <shape_like S>
inline constexpr std::size_t last_extent = S::extents[S::rank - 1];

/// Product of all extents but the last: the number of "rows" of a row-major tensor.
template <shape_like S>
inline constexpr std::size_t leading_size = S::size / last_extent<S>;

// ---------------------------------------------------------------- matmul

/// Checked in a class whose name carries both shapes, so the first error line names them.
template <shape_like A, shape_like B>
struct matmul_operands_must_be_matrices {
    static_assert(A::rank == 2 && B::rank == 2,
                  "matmul: both operands must have rank 2 (A is [M, K], B is [K, N])");
    static constexpr bool value = true;
};

template <shape_like A, shape_like B>
struct matmul_inner_extents_must_match {
    static_assert(matmul_operands_must_be_matrices<A, B>::value);
    static_assert(A::extents[A::rank - 1] == B::extents[0],
                  "matmul: inner extents differ (A is [M, K], B must be [K, N])");
    using type = shape<A::extents[0], B::extents[B::rank - 1]>;
};

/// [M, K] x [K, N] -> [M, N]
template <shape_like A, shape_like B>
using matmul_shape = typename matmul_inner_extents_must_match<A, B>::type;

// ---------------------------------------------------------------- transpose

template <shape_like S>
struct transpose_needs_rank_at_least_2 {
    static_assert(S::rank >= 2, "transpose: swaps the last two axes, so the rank must be at least 2");
    using type = shape_from<[] {
        auto e = S::extents;
        std::swap(e[S::rank - 1], e[S::rank - 2]);
        return e;
    }()>;
};

/// The shape with its last two axes swapped.
template <shape_like S>
using transpose_shape = typename transpose_needs_rank_at_least_2<S>::type;

// ---------------------------------------------------------------- broadcast

namespace detail {
template <class A, class B>
constexpr bool broadcastable() {
    constexpr std::size_t r = A::rank > B::rank ? A::rank : B::rank;
    for (std::size_t i = 0; i < r; ++i) {
        const std::size_t a = i < A::rank ? A::extents[A::rank - 1 - i] : 1;
        const std::size_t b = i < B::rank ? B::extents[B::rank - 1 - i] : 1;
        if (a != b && a != 1 && b != 1) return false;
    }
    return true;
}
template <class A, class B>
constexpr auto broadcast_extents() {
    constexpr std::size_t r = A::rank > B::rank ? A::rank : B::rank;
    std::array<std::size_t, r> out{};
    for (std::size_t i = 0; i < r; ++i) {
        const std::size_t a = i < A::rank ? A::extents[A::rank - 1 - i] : 1;
        const std::size_t b = i < B::rank ? B::extents[B::rank - 1 - i] : 1;
        out[r - 1 - i] = a > b ? a : b;
    }
    return out;
}
}  // namespace detail

template <shape_like A, shape_like B>
struct shapes_must_be_broadcastable {
    static_assert(detail::broadcastable<A, B>(),
                  "broadcast: aligned from the last axis, each pair of extents must be equal or 1");
    using type = shape_from<detail::broadcast_extents<A, B>()>;
};

/// NumPy broadcasting: axes aligned from the right, extents equal or 1.
template <shape_like A, shape_like B>
using broadcast_shape = typename shapes_must_be_broadcastable<A, B>::type;

template <shape_like A, shape_like B>
inline constexpr bool broadcastable_v = detail::broadcastable<A, B>();

// ---------------------------------------------------------------- reshape

template <shape_like From, shape_like To>
struct reshape_must_keep_the_element_count {
    static_assert(From::size == To::size,
                  "reshape: the new shape must have the same number of elements as the old one");
    using type = To;
};

/// To, after checking that From and To hold the same number of elements.
template <shape_like From, shape_like To>
using reshape_shape = typename reshape_must_keep_the_element_count<From, To>::type;

// ---------------------------------------------------------------- concat

template <std::size_t Axis, shape_like A, shape_like B>
struct concat_needs_equal_ranks_and_other_extents {
    static_assert(A::rank == B::rank, "concat: both shapes must have the same rank");
    static_assert(Axis < A::rank, "concat: the axis is out of range");
    static_assert([] {
        for (std::size_t i = 0; i < A::rank; ++i)
            if (i != Axis && A::extents[i] != B::extents[i]) return false;
        return true;
    }(), "concat: every extent except the concatenation axis must be equal");
    using type = shape_from<[] {
        auto e = A::extents;
        e[Axis] += B::extents[Axis];
        return e;
    }()>;
};

/// A and B joined along Axis.
template <std::size_t Axis, shape_like A, shape_like B>
using concat_shape = typename concat_needs_equal_ranks_and_other_extents<Axis, A, B>::type;

}  // namespace ctdl
