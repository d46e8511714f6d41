#pragma once
// tensor<T, Shape, Exec>: a row-major array whose shape is a type, with storage owned
// through the execution policy Exec. tensor_view<T, Shape, Exec> is the non-owning form
// (T may be const); slices, rows and reshapes are views.
//
//   ctdl::tensor<float, ctdl::shape<64, 784>> x;   // zero-filled, 64-byte aligned, cpu
//   x(3, 5) = 1.f;                                 // one index per axis, checked at compile time
//   auto rows = x.slice<8, 16>();                  // view of rows 8..23: shape<16, 784>
//   auto flat = x.reshape<ctdl::shape<64 * 784>>();
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <string>
#include <type_traits>

#include "../exec/cpu.hpp"
#include "error.hpp"
#include "shape.hpp"

namespace ctdl {

/// Element access takes exactly one index per axis; the class name carries the shape and
/// the number of indices given, so the first error line says both.
template <shape_like S, std::size_t IndexCount>
struct tensor_index_count_must_equal_rank {
    static_assert(IndexCount == S::rank,
                  "tensor element access: give exactly one index per axis of the tensor's shape");
    static constexpr bool value = true;
};

template <class From, class To>
struct copy_needs_equal_shapes {
    static_assert(std::is_same_v<From, To>, "copy: source and destination shapes differ");
    static constexpr bool value = true;
};

namespace detail {

#if defined(CTDL_CHECK_BOUNDS)
inline constexpr bool check_bounds = true;
#else
inline constexpr bool check_bounds = false;
#endif

template <shape_like S, bool Checked, class... I>
constexpr std::size_t linear_index(I... idx) {
    static_assert(tensor_index_count_must_equal_rank<S, sizeof...(I)>::value);
    const std::size_t ix[] = {static_cast<std::size_t>(idx)..., 0};
    std::size_t off = 0;
    for (std::size_t a = 0; a < S::rank; ++a) {
        if constexpr (Checked) {
            if (ix[a] >= S::extents[a])
                throw error("tensor index " + std::to_string(ix[a]) + " is out of range for axis " +
                            std::to_string(a) + " of extent " + std::to_string(S::extents[a]));
        }
        off += ix[a] * S::strides[a];
    }
    return off;
}

}  // namespace detail

template <class T, shape_like Shape, class Exec = cpu>
class tensor_view;

/// Operations shared by tensors and views; Derived provides data().
template <class Derived, class T, shape_like Shape, class Exec>
class tensor_base {
public:
    using value_type = std::remove_const_t<T>;
    using shape_type = Shape;
    using exec_type = Exec;
    static constexpr std::size_t rank = Shape::rank;
    static constexpr std::size_t size = Shape::size;

    /// x(i, j, ...): one index per axis (a compile error otherwise). Unchecked, unless
    /// CTDL_CHECK_BOUNDS is defined; at() always checks.
    template <std::integral... I>
        requires Exec::host_accessible
    constexpr T& operator()(I... idx) const {
        return ptr()[detail::linear_index<Shape, detail::check_bounds>(idx...)];
    }

    /// Like operator(), but an index out of range throws ctdl::error.
    template <std::integral... I>
        requires Exec::host_accessible
    T& at(I... idx) const {
        return ptr()[detail::linear_index<Shape, true>(idx...)];
    }

    /// Rows Begin .. Begin + Count - 1 along the first axis, as a view.
    template <std::size_t Begin, std::size_t Count>
    auto slice() const
        requires(Shape::rank >= 2)
    {
        static_assert(Begin + Count <= Shape::extents[0], "slice: rows past the end of the first axis");
        return tensor_view<T, prepend<Count, drop_front<1, Shape>>, Exec>(ptr() + Begin * Shape::strides[0]);
    }

    /// Entry i of the first axis, as a view of rank - 1 (i is checked: ctdl::error if out of range).
    auto operator[](std::size_t i) const
        requires(Shape::rank >= 2)
    {
        if (i >= Shape::extents[0])
            throw error("tensor row " + std::to_string(i) + " is out of range for extent " +
                        std::to_string(Shape::extents[0]));
        return tensor_view<T, drop_front<1, Shape>, Exec>(ptr() + i * Shape::strides[0]);
    }

    /// The same elements seen with another shape of equal size.
    template <shape_like To>
    auto reshape() const {
        return tensor_view<T, reshape_shape<Shape, To>, Exec>(ptr());
    }

    T* begin() const requires Exec::host_accessible { return ptr(); }
    T* end() const requires Exec::host_accessible { return ptr() + size; }

private:
    T* ptr() const { return static_cast<const Derived&>(*this).data(); }
};

/// A non-owning view of Shape::size contiguous elements.
template <class T, shape_like Shape, class Exec>
class tensor_view : public tensor_base<tensor_view<T, Shape, Exec>, T, Shape, Exec> {
public:
    constexpr explicit tensor_view(T* p) noexcept : p_(p) {}
    /// A view of const elements from a view of mutable ones.
    template <class U>
        requires std::same_as<const U, T> && (!std::same_as<U, T>)
    constexpr tensor_view(tensor_view<U, Shape, Exec> v) noexcept : p_(v.data()) {}

    constexpr T* data() const noexcept { return p_; }

private:
    T* p_;
};

/// An owning tensor: Shape::size elements, zero-initialised, storage from Exec.
template <class T, shape_like Shape, class Exec = cpu>
class tensor : public tensor_base<tensor<T, Shape, Exec>, T, Shape, Exec> {
    using base = tensor_base<tensor<T, Shape, Exec>, T, Shape, Exec>;

public:
    tensor() : buf_(Shape::size) {}
    /// Every element set to value.
    explicit tensor(T value) requires Exec::host_accessible : buf_(Shape::size) { std::fill_n(data(), Shape::size, value); }

    T* data() noexcept { return buf_.data(); }
    const T* data() const noexcept { return buf_.data(); }

    // Element access through a const tensor yields const elements.
    template <std::integral... I>
        requires Exec::host_accessible
    constexpr T& operator()(I... idx) { return data()[detail::linear_index<Shape, detail::check_bounds>(idx...)]; }
    template <std::integral... I>
        requires Exec::host_accessible
    constexpr const T& operator()(I... idx) const {
        return data()[detail::linear_index<Shape, detail::check_bounds>(idx...)];
    }

    tensor_view<T, Shape, Exec> view() noexcept { return tensor_view<T, Shape, Exec>(data()); }
    tensor_view<const T, Shape, Exec> view() const noexcept { return tensor_view<const T, Shape, Exec>(data()); }
    operator tensor_view<T, Shape, Exec>() noexcept { return view(); }
    operator tensor_view<const T, Shape, Exec>() const noexcept { return view(); }

    template <std::size_t Begin, std::size_t Count>
    auto slice() { return view().template slice<Begin, Count>(); }
    template <std::size_t Begin, std::size_t Count>
    auto slice() const { return view().template slice<Begin, Count>(); }
    auto operator[](std::size_t i) requires(Shape::rank >= 2) { return view()[i]; }
    auto operator[](std::size_t i) const requires(Shape::rank >= 2) { return view()[i]; }
    template <shape_like To>
    auto reshape() { return view().template reshape<To>(); }
    template <shape_like To>
    auto reshape() const { return view().template reshape<To>(); }
    template <std::integral... I>
    T& at(I... idx) { return view().at(idx...); }
    template <std::integral... I>
    const T& at(I... idx) const { return view().at(idx...); }
    T* begin() requires Exec::host_accessible { return data(); }
    T* end() requires Exec::host_accessible { return data() + Shape::size; }
    const T* begin() const requires Exec::host_accessible { return data(); }
    const T* end() const requires Exec::host_accessible { return data() + Shape::size; }

private:
    typename Exec::template buffer<T> buf_;
};

// ---------------------------------------------------------------- concepts

template <class X>
concept tensor_like = requires {
    typename std::remove_cvref_t<X>::value_type;
    typename std::remove_cvref_t<X>::shape_type;
    typename std::remove_cvref_t<X>::exec_type;
} && requires(X& x) { x.data(); };

template <class X>
using shape_of = typename std::remove_cvref_t<X>::shape_type;

// ---------------------------------------------------------------- host helpers

/// Every element of a host tensor or view set to value.
template <tensor_like X>
    requires std::remove_cvref_t<X>::exec_type::host_accessible
void fill(X&& x, typename std::remove_cvref_t<X>::value_type value) {
    record_pass(pass::copy);
    std::fill_n(x.data(), shape_of<X>::size, value);
}

/// dst = src (same shape, host memory).
template <tensor_like Src, tensor_like Dst>
    requires std::remove_cvref_t<Src>::exec_type::host_accessible && std::remove_cvref_t<Dst>::exec_type::host_accessible
void copy(const Src& src, Dst&& dst) {
    static_assert(copy_needs_equal_shapes<shape_of<Src>, shape_of<Dst>>::value);
    record_pass(pass::copy);
    std::copy_n(src.data(), shape_of<Src>::size, dst.data());
}

/// Bitwise-equal elements (same shape).
template <tensor_like A, tensor_like B>
bool equal(const A& a, const B& b) {
    static_assert(copy_needs_equal_shapes<shape_of<A>, shape_of<B>>::value);
    return std::equal(a.data(), a.data() + shape_of<A>::size, b.data());
}

/// max |a - b| over all elements, in double.
template <tensor_like A, tensor_like B>
double max_abs_diff(const A& a, const B& b) {
    static_assert(copy_needs_equal_shapes<shape_of<A>, shape_of<B>>::value);
    double m = 0;
    for (std::size_t i = 0; i < shape_of<A>::size; ++i)
        m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    return m;
}

/// |a - b| <= atol + rtol * |b| for every element (NaN never matches).
template <tensor_like A, tensor_like B>
bool allclose(const A& a, const B& b, double rtol = 1e-5, double atol = 1e-8) {
    static_assert(copy_needs_equal_shapes<shape_of<A>, shape_of<B>>::value);
    for (std::size_t i = 0; i < shape_of<A>::size; ++i) {
        const double x = static_cast<double>(a.data()[i]), y = static_cast<double>(b.data()[i]);
        if (!(std::abs(x - y) <= atol + rtol * std::abs(y))) return false;
    }
    return true;
}

}  // namespace ctdl
