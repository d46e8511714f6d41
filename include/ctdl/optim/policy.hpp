#pragma once
// Where an optimizer's model keeps its buffers, and the loop that optimizers run there when
// the host cannot read them.
//
// A model whose exec_type is host-accessible (ctdl::cpu), or a model with no exec_type at
// all (a plain struct with host arrays), is updated by the optimizers' own loops over raw
// memory (sweep.hpp). Any other model (ctdl::device) keeps its optimizer state in
// exec_type::buffer<T> and is updated by one Exec::for_each_index per trainable segment,
// with a CTDL_HD functor per element (segments that touch are merged already, so a fully
// trainable model is one pass).
#include <cstddef>

#include "../exec/aligned_buffer.hpp"
#include "segment.hpp"

namespace ctdl::optim::detail {

/// The optimizers read and write this model's buffers directly.
template <class Model>
inline constexpr bool host_model = [] {
    if constexpr (requires { typename Model::exec_type; })
        return static_cast<bool>(Model::exec_type::host_accessible);
    else
        return true;
}();

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

/// For a model that is not host_model: launch(param, grad, state, n) once per trainable
/// segment, in order (state: the segment's first index in the gradient layout).
template <optimizable Model, class Launch>
void for_each_segment(Model& model, Launch&& launch) {
    static_assert(gradient_segments_must_lie_within_gradient_count<Model>::value);
    auto* const params = model.parameters();
    auto* const grads = model.gradients();
    for (const segment& s : Model::gradient_segments)
        if (s.size) launch(params + s.param_offset, grads + s.grad_offset, s.grad_offset, s.size);
}

}  // namespace ctdl::optim::detail
