#pragma once
// Where an optimizer's model keeps its buffers, and the one loop every optimizer update and
// the gradient clipping run there, on every policy.
//
// A model runs under its exec_type; a model without one (a plain struct with host arrays)
// runs under ctdl::cpu. sweep(model, launch) calls launch(param, grad, state, n) once per
// trainable segment, in order: n consecutive trainable elements, param and grad point into
// the model's flat buffers and state is the index of the first element in the gradient
// layout, where optimizer state lives (segments that touch are merged already, so a fully
// trainable model is one call). The optimizers' launch is one exec::for_each_index over
// the segment with their CTDL_HD update functor: split over the cpu pool when the segment
// is large, a Thrust for_each on the device. Updates are elementwise, so the result does
// not depend on the split: it is bitwise the same for every thread count.
#include <cstddef>
#include <type_traits>

#include "../exec/aligned_buffer.hpp"
#include "../exec/cpu.hpp"
#include "segment.hpp"

namespace ctdl::optim::detail {

template <class Model>
struct exec_of {
    using type = cpu;
};
template <class Model>
    requires requires { typename Model::exec_type; }
struct exec_of<Model> {
    using type = typename Model::exec_type;
};

/// The policy that runs Model's updates: its exec_type, or ctdl::cpu for a model without one.
template <class Model>
using exec_t = typename exec_of<Model>::type;

/// The host can read and write this model's buffers directly.
template <class Model>
inline constexpr bool host_model = static_cast<bool>(exec_t<Model>::host_accessible);

template <class Model, bool Host = host_model<Model>>
struct state_storage {
    using type = aligned_buffer<typename Model::value_type>;
};
template <class Model>
struct state_storage<Model, false> {
    using type = typename Model::exec_type::template buffer<typename Model::value_type>;
};

/// One optimizer state buffer (gradient layout) in the model's memory.
template <class Model>
using state_buffer = typename state_storage<Model>::type;

/// launch(param, grad, state, n) once per non-empty trainable segment, in order (state: the
/// segment's first index in the gradient layout).
template <optimizable Model, class Launch>
void sweep(Model& model, Launch&& launch) {
    static_assert(gradient_segments_must_lie_within_gradient_count<Model>::value);
    // Only trainable parameters are written: a model that tells them apart keeps what it
    // packed of its frozen ones (model::trainable_parameters).
    auto* const params = [&] {
        if constexpr (requires { model.trainable_parameters(); }) return model.trainable_parameters();
        else return model.parameters();
    }();
    auto* const grads = model.gradients();
    for (const segment& s : Model::gradient_segments)
        if (s.size) launch(params + s.param_offset, grads + s.grad_offset, s.grad_offset, s.size);
}

}  // namespace ctdl::optim::detail
