#pragma once
// What the optimizers need of a model (ctdl::segment itself is in model/segment.hpp).
//
// A trainable model keeps one flat parameter buffer and one flat gradient buffer. Its
// `gradient_segments` (a constexpr std::array<segment, N>) say which parameter ranges are
// trainable: parameters [param_offset, param_offset + size) have their gradients at
// [grad_offset, grad_offset + size). Frozen parameters appear in no segment, so the
// optimizers never touch them: no state, no weight decay, no work.
//
// optim::optimizable<Model> is the interface the optimizers and clip_grad_norm need:
//   using value_type = T;                           // float or double
//   static constexpr std::size_t gradient_count;    // elements of the gradient buffer
//   T* parameters();  T* gradients();               // flat buffers (in exec_type's memory, if any)
//   static constexpr auto gradient_segments;        // std::array<ctdl::segment, N>
#include <array>
#include <concepts>
#include <cstddef>
#include <type_traits>

#include "../model/segment.hpp"

namespace ctdl {

namespace optim {

namespace detail {
template <class A>
struct is_segment_array : std::false_type {};
template <std::size_t N>
struct is_segment_array<std::array<segment, N>> : std::true_type {};
}  // namespace detail

/// A model the optimizers can update: flat buffers and compile-time segments.
template <class Model>
concept optimizable = requires(Model& m) {
    typename Model::value_type;
    requires std::floating_point<typename Model::value_type>;
    { Model::gradient_count } -> std::convertible_to<std::size_t>;
    { m.parameters() } -> std::same_as<typename Model::value_type*>;
    { m.gradients() } -> std::same_as<typename Model::value_type*>;
    requires detail::is_segment_array<std::remove_cv_t<decltype(Model::gradient_segments)>>::value;
};

/// Every optimizer checks its model here first, so that giving it a model without gradients
/// (model<frozen<A>>) fails with a sentence. An optimizer refused this
/// way still compiles as a shell whose step() does nothing (see `usable` in the optimizers),
/// so the sentence is the only error.
template <class Model>
struct optimizer_needs_a_model_with_gradients {
    static constexpr bool value = [] {
        if constexpr (optimizable<Model>) return Model::gradient_count > 0;
        else return false;
    }();
    static_assert(value,
                  "optimizer: this model has no gradients to follow (model<frozen<A>> has none): build the "
                  "optimizer for model<A>, and freeze() the model after training");
};

/// Number of trainable elements: the sum of the segment sizes.
template <optimizable Model>
inline constexpr std::size_t trainable_count = [] {
    std::size_t n = 0;
    for (const segment& s : Model::gradient_segments) n += s.size;
    return n;
}();

/// The segments must lie inside the gradient buffer and must not overlap there (checked at
/// compile time; the class name carries the model type).
template <optimizable Model>
struct gradient_segments_must_lie_within_gradient_count {
    static constexpr bool inside = [] {
        for (const segment& s : Model::gradient_segments)
            if (s.grad_offset + s.size > Model::gradient_count) return false;
        return true;
    }();
    static_assert(inside, "optimizer: a gradient segment reaches past gradient_count");
    static constexpr bool disjoint = [] {
        const auto& g = Model::gradient_segments;
        for (std::size_t a = 0; a < g.size(); ++a)
            for (std::size_t b = a + 1; b < g.size(); ++b)
                if (g[a].grad_offset < g[b].grad_offset + g[b].size &&
                    g[b].grad_offset < g[a].grad_offset + g[a].size)
                    return false;
        return true;
    }();
    static_assert(disjoint, "optimizer: two gradient segments overlap in the gradient buffer");
    static constexpr bool value = true;
};

}  // namespace optim
}  // namespace ctdl
