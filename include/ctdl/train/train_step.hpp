#pragma once
// train_step: one step of gradient descent.
//
//   forward (keeping activations) -> loss and dL/dy in one fused pass -> generated backward
//   -> one fused optimizer pass over the flat buffers.
//
// Uses the model's own activation storage for the input shape, made on first use: after
// that first step, a step allocates nothing (on the device policy, cross_entropy still
// allocates its per-row scratch in each call). The same code trains a model on any policy:
// x and target live under the model's exec_type (ctdl::to<Exec> moves them there).
#include <concepts>
#include <type_traits>

#include "../core/tensor.hpp"
#include "../model/model.hpp"

namespace ctdl {

/// A loss usable by train_step: mean loss and its gradient at the model's output in one call.
template <class Loss, class Y, class Target>
concept loss_function = requires(const Loss& loss, const Y& y, const Target& t, Y& dy) {
    { loss.forward_backward(y, t, dy) } -> std::convertible_to<typename Y::value_type>;
};

/// One step on batch (x, target); returns the loss before the update.
template <class Model, class Optimizer, class Loss, tensor_like X, tensor_like Target>
typename Model::value_type train_step(Model& net, Optimizer& opt, const Loss& loss, const X& x,
                                      const Target& target) {
    static_assert(model_is_frozen_and_cannot_be_trained<Model>::value);
    auto& acts = net.template activations_for<shape_of<X>, element_of<X>>();
    const auto& y = net.forward(x, acts);
    static_assert(loss_function<Loss, std::remove_cvref_t<decltype(y)>, Target>,
                  "train_step: the loss must offer forward_backward(output, target, d_output) for this model's "
                  "output and these targets");
    const auto value = loss.forward_backward(y, target, acts.dout);
    net.backward(acts, x, acts.dout);
    opt.step();
    return value;
}

}  // namespace ctdl
