#pragma once
// What the losses share: the view concepts, the policy check and the leading shape of a
// logits shape.
//
// Every loss takes tensors (or views) under any execution policy, all under the same one,
// and runs its op (include/ctdl/ops/<loss>/: the math once, one generic kernel over the
// policy's for_each_index and sum) under that policy through ctdl::launch.
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../core/shape.hpp"
#include "../core/tensor.hpp"

namespace ctdl::loss {

/// A standard integer type that can hold a class index (not bool, not a character type).
template <class I>
concept class_index = std::integral<I> && !std::same_as<I, bool> && !std::same_as<I, char> &&
                      !std::same_as<I, wchar_t> && !std::same_as<I, char8_t> && !std::same_as<I, char16_t> &&
                      !std::same_as<I, char32_t>;

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

}  // namespace ctdl::loss
