#pragma once
// sgd: stochastic gradient descent with momentum, dampening, weight decay and Nesterov,
// exactly as torch.optim.SGD computes it. For each trainable element, with g its gradient:
//
//   d = g + weight_decay * p                          (if weight_decay != 0)
//   b = d                                             (first step)
//   b = momentum * b + (1 - dampening) * d            (later steps)      } if momentum != 0
//   d = d + momentum * b  (nesterov)   or   d = b     (otherwise)        }
//   p = p - lr * d
//
//   ctdl::optim::sgd opt{net, {.lr = 0.05f, .momentum = 0.9f}};
//   opt.step();            // one fused pass over the trainable ranges
//
// The momentum buffer (gradient_count elements) exists only when momentum != 0 and is
// allocated here, never in step(). For a device model it lives in device memory. Each step
// is one Exec::for_each_index per trainable segment with detail::sgd_update, on every
// policy (sweep.hpp).
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../exec/hd.hpp"
#include "../exec/pass_count.hpp"
#include "segment.hpp"
#include "state.hpp"
#include "sweep.hpp"

namespace ctdl::optim {

template <class T>
struct sgd_options {
    T lr = T(0.01);
    T momentum = 0;
    T dampening = 0;
    T weight_decay = 0;
    bool nesterov = false;
};

namespace detail {

template <class T>
struct sgd_coefficients {
    T grad_scale, weight_decay, momentum, one_minus_dampening, neg_lr;
};

/// The update of element i, the one definition every policy runs through
/// Exec::for_each_index (on the cpu, inlined into the pool's loop, which the compiler
/// vectorizes). The flags are fixed for the whole pass.
template <class T, bool Decay, bool Momentum, bool First, bool Nesterov>
struct sgd_update {
    T* p;
    const T* g;
    T* buf;
    sgd_coefficients<T> c;
    static constexpr std::size_t work = Momentum ? 3 : 2;  // arrays one index touches
    CTDL_HD void operator()(std::size_t i) const {
        T d = g[i] * c.grad_scale;
        if constexpr (Decay) d = d + c.weight_decay * p[i];
        if constexpr (Momentum) {
            T b;
            if constexpr (First)
                b = d;
            else
                b = buf[i] * c.momentum + c.one_minus_dampening * d;
            buf[i] = b;
            if constexpr (Nesterov)
                d = d + c.momentum * b;
            else
                d = b;
        }
        p[i] = p[i] + c.neg_lr * d;
    }
};

}  // namespace detail

template <class Model>
class sgd {
public:
    using model_type = Model;
    /// False for a model without gradients (the error is said once, in segment.hpp).
    static constexpr bool usable = optimizer_needs_a_model_with_gradients<Model>::value;
    // Checked when the optimizer type is made (the check says its sentence itself).
    static_assert(sizeof(optimizer_needs_a_model_with_gradients<Model>) > 0);
    using value_type = typename Model::value_type;
    using options_type = sgd_options<value_type>;

    explicit sgd(Model& model, options_type options = {})
        : model_(&model), opts_(options), momentum_buffer_(options.momentum != 0 ? Model::gradient_count : 0) {
        if (!(opts_.lr >= 0)) throw error("sgd: lr must be >= 0, got " + std::to_string(opts_.lr));
        if (!(opts_.momentum >= 0)) throw error("sgd: momentum must be >= 0, got " + std::to_string(opts_.momentum));
        if (!(opts_.weight_decay >= 0))
            throw error("sgd: weight_decay must be >= 0, got " + std::to_string(opts_.weight_decay));
        if (opts_.nesterov && (opts_.momentum <= 0 || opts_.dampening != 0))
            throw error("sgd: nesterov needs momentum > 0 and dampening = 0");
    }

    /// One update of every trainable parameter from its gradient: one fused pass.
    void step() { update(value_type(1)); }

    /// As step(), with every gradient multiplied by grad_scale first (e.g. clip_scale(...));
    /// the gradient buffer itself is left as it is.
    void step(value_type grad_scale) { update(grad_scale); }

    value_type lr() const noexcept { return opts_.lr; }
    void set_lr(value_type lr) {
        if (!(lr >= 0)) throw error("sgd: lr must be >= 0, got " + std::to_string(lr));
        opts_.lr = lr;
    }
    const options_type& options() const noexcept { return opts_; }

    /// Steps taken so far (restored from a checkpoint with set_step_count).
    std::uint64_t step_count() const noexcept { return steps_; }
    void set_step_count(std::uint64_t n) noexcept { steps_ = n; }

    /// "momentum_buffer" (when momentum != 0), in the gradient layout. The spans point into
    /// the model's memory: for a device model use state_to_host / state_from_host (state.hpp).
    std::vector<named_state<value_type>> state_tensors() {
        if (momentum_buffer_.size() == 0) return {};
        return {{"momentum_buffer", {momentum_buffer_.data(), momentum_buffer_.size()}}};
    }
    std::vector<named_state<const value_type>> state_tensors() const {
        if (momentum_buffer_.size() == 0) return {};
        return {{"momentum_buffer", {momentum_buffer_.data(), momentum_buffer_.size()}}};
    }

    Model& model() const noexcept { return *model_; }

private:
    using T = value_type;

    using coefficients = detail::sgd_coefficients<T>;

    template <bool... Flags>
    void dispatch(const coefficients& c) {
        if constexpr (sizeof...(Flags) < 4) {
            // Turn the next run-time flag into a template argument.
            constexpr std::size_t k = sizeof...(Flags);
            const bool next = k == 0 ? opts_.weight_decay != 0
                            : k == 1 ? opts_.momentum != 0
                            : k == 2 ? steps_ == 0
                                     : opts_.nesterov;
            if (next)
                dispatch<Flags..., true>(c);
            else
                dispatch<Flags..., false>(c);
        } else {
            using Exec = detail::exec_t<Model>;
            T* const buf = momentum_buffer_.data();
            using update = detail::sgd_update<T, Flags...>;
            detail::sweep(*model_, [&](T* p, const T* g, std::size_t s, std::size_t n) {
                Exec::for_each_index(n, update{p, g, buf == nullptr ? nullptr : buf + s, c}, update::work);
            });
        }
    }

    void update(T grad_scale) {
        if constexpr (usable) {
            record_pass(pass::update);
            const coefficients c{grad_scale, opts_.weight_decay, opts_.momentum, T(1) - opts_.dampening, -opts_.lr};
            dispatch<>(c);
            ++steps_;
        }
    }

    Model* model_;
    options_type opts_;
    std::uint64_t steps_ = 0;
    detail::state_buffer<Model> momentum_buffer_;
};

template <class Model>
sgd(Model&, sgd_options<typename Model::value_type>) -> sgd<Model>;
template <class Model>
sgd(Model&) -> sgd<Model>;

}  // namespace ctdl::optim
