#pragma once
// train_step: one step of gradient descent.
//
//   forward (keeping activations) -> loss and dL/dy in one fused pass -> generated backward
//   (model::backward_step: the gradients go into dL/dy's buffer when the model's output
//   layer is frozen, as under LoRA) -> one fused optimizer pass over the trainable segments
//   of the flat buffers (the optimizer's update functor under Exec::for_each_index,
//   optim/sweep.hpp).
//
// Uses the model's own activation storage for the input shape, made on first use: after
// that first step, a step allocates nothing (on any policy). The same code trains a model
// on any policy: x and target live under the model's exec_type (ctdl::to<Exec> moves them
// there).
#include <concepts>
#include <string>
#include <type_traits>

#include "../core/concepts.hpp"
#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "../model/model.hpp"

namespace ctdl {

/// A loss usable by train_step: mean loss and its gradient at the model's output in one call.
template <class Loss, class Y, class Target>
concept loss_function = requires(const Loss& loss, const Y& y, const Target& t, Y& dy) {
    { loss.forward_backward(y, t, dy) } -> std::convertible_to<typename Y::value_type>;
};

/// Named after the mistake, with the optimizer in its name (ctdl::optimizer: core/concepts.hpp).
template <class Optimizer>
struct train_step_optimizer_must_be_an_optimizer {
    static constexpr bool value = optimizer<Optimizer>;
    static_assert(value, "train_step: the optimizer must offer model_type, usable, step(), step(scale), lr(), "
                         "set_lr(lr), step_count(), set_step_count(n), state_tensors() and model() "
                         "(ctdl::optimizer), as optim::sgd, adam and adamw do");
};

/// Named after the mistake: an optimizer follows the gradients of the model it was made from.
template <class Optimizer, class Model>
struct optimizer_was_made_for_another_model_type {
    static constexpr bool value = [] {
        if constexpr (requires { typename Optimizer::model_type; })
            return std::same_as<typename Optimizer::model_type, Model>;
        else
            return true;  // a user's optimizer without model_type: not checked
    }();
    static_assert(value, "train_step: the optimizer was made for a model of another type: make it from this "
                         "model (e.g. optim::sgd opt{net})");
};

/// Whether opt can step net: false (after one compile error that says why) when it is not
/// an optimizer, refused its model, or was made for another model type.
template <class Optimizer, class Model>
inline constexpr bool optimizer_fits = [] {
    if constexpr (!train_step_optimizer_must_be_an_optimizer<Optimizer>::value) {
        return false;
    } else {
        if constexpr (!Optimizer::usable) return false;  // the optimizer has said why
        return optimizer_was_made_for_another_model_type<Optimizer, Model>::value;
    }
}();

/// The run-time half: the optimizer must be the one made from this very model object
/// (another model of the same type would have its gradients ignored and nothing updated).
template <class Optimizer, class Model>
void check_optimizer_follows(const Optimizer& opt, const Model& net, const char* who) {
    if constexpr (requires { opt.model(); })
        if (&opt.model() != &net)
            throw error(std::string(who) + ": the optimizer was made for another model object of the same type; "
                                           "make one optimizer per model (e.g. optim::sgd opt{net})");
}

/// One step on batch (x, target); returns the loss before the update.
template <class Model, class Optimizer, class Loss, tensor_like X, tensor_like Target>
typename Model::value_type train_step(Model& net, Optimizer& opt, const Loss& loss, const X& x,
                                      const Target& target) {
    if constexpr (!optimizer_fits<Optimizer, Model>) {
        return {};  // refused at compile time above; nothing more to report
    } else {
        static_assert(model_is_frozen_and_cannot_be_trained<Model>::value);
        check_optimizer_follows(opt, net, "train_step");
        auto& acts = net.template activations_for<shape_of<X>, element_of<X>>();
        const auto& y = net.forward(x, acts);
        static_assert(loss_function<Loss, std::remove_cvref_t<decltype(y)>, Target>,
                      "train_step: the loss must offer forward_backward(output, target, d_output) for this model's "
                      "output and these targets");
        const auto value = loss.forward_backward(y, target, acts.dout);
        net.backward_step(acts, x);  // the gradients may live in acts.dout (model::backward_step)
        opt.step();
        return value;
    }
}

}  // namespace ctdl
