#pragma once
// adam and adamw, exactly as torch.optim.Adam / torch.optim.AdamW compute them (no amsgrad).
// For step t = 1, 2, ... and each trainable element with gradient g:
//
//   g = g + weight_decay * p                 (adam, if weight_decay != 0: L2 in the gradient)
//   p = p * (1 - lr * weight_decay)          (adamw: decoupled decay)
//   m = beta1 * m + (1 - beta1) * g          ("exp_avg")
//   v = beta2 * v + (1 - beta2) * g^2        ("exp_avg_sq")
//   p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// The per-step scalars are computed in double, as PyTorch does in Python, and rounded to
// the model's type once; the elementwise work is one fused pass in the model's type: one
// Exec::for_each_index per trainable segment with detail::adam_update, on every policy
// (sweep.hpp). For a device model the state lives in device memory.
//
//   ctdl::optim::adamw opt{net, {.lr = 3e-4f, .weight_decay = 0.1f}};
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../exec/aligned_buffer.hpp"
#include "../exec/hd.hpp"
#include "../exec/pass_count.hpp"
#include "segment.hpp"
#include "sqrt.hpp"
#include "state.hpp"
#include "sweep.hpp"

namespace ctdl::optim {

template <class T>
struct adam_options {
    T lr = T(1e-3);
    std::pair<T, T> betas{T(0.9), T(0.999)};
    T eps = T(1e-8);
    T weight_decay = 0;  // L2: added to the gradient
};

template <class T>
struct adamw_options {
    T lr = T(1e-3);
    std::pair<T, T> betas{T(0.9), T(0.999)};
    T eps = T(1e-8);
    T weight_decay = T(1e-2);  // decoupled: p *= 1 - lr * weight_decay
};

namespace detail {

template <class T>
struct adam_coefficients {
    T grad_scale, l2, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, neg_step_size, bias_correction2_sqrt, eps;
};

/// The update of one block of Block consecutive elements (the last one may be shorter), the
/// one definition every policy runs through Exec::for_each_index (one index per block). The
/// cpu takes blocks of 256, short enough for the square roots to stay in L1 between the
/// loops and long enough for them to be vectorized (sqrt.hpp); the device takes Block = 1,
/// one thread per element.
template <class T, bool L2, std::size_t Block>
struct adam_update {
    T* p;
    const T* g;
    T* m;
    T* v;
    std::size_t n;  // elements in the segment
    adam_coefficients<T> c;

    CTDL_HD void operator()(std::size_t b) const {
        const std::size_t i = b * Block;
        const std::size_t len = Block == 1 || n - i >= Block ? Block : n - i;
        run(p + i, g + i, m + i, v + i, len, c);
    }

    CTDL_HD static void run(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                            std::size_t n, const adam_coefficients<T>& c) {
        alignas(Block > 1 ? 64 : alignof(T)) T root[Block];
        for (std::size_t i = 0; i < n; ++i) {
            T gi = g[i] * c.grad_scale;
            if constexpr (L2) gi = gi + c.l2 * p[i];
            const T mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
            const T vi = v[i] * c.beta2 + c.one_minus_beta2 * (gi * gi);
            m[i] = mi;
            v[i] = vi;
            root[i] = vi;
        }
        sqrt_in_place(root, n);
        for (std::size_t i = 0; i < n; ++i) {
            const T denom = root[i] / c.bias_correction2_sqrt + c.eps;
            p[i] = p[i] * c.decay + (c.neg_step_size * m[i]) / denom;
        }
    }
};

/// The state and the fused pass shared by adam (Decoupled = false) and adamw (true).
template <class Model, bool Decoupled>
class adam_core {
public:
    /// False for a model without gradients (the error is said once, in segment.hpp).
    static constexpr bool usable = optimizer_needs_a_model_with_gradients<Model>::value;
    // Checked when the optimizer type is made (the check says its sentence itself).
    static_assert(sizeof(optimizer_needs_a_model_with_gradients<Model>) > 0);
    using value_type = typename Model::value_type;
    using T = value_type;

    adam_core(Model& model, T lr, std::pair<T, T> betas, T eps, T weight_decay)
        : model_(&model), lr_(lr), beta1_(betas.first), beta2_(betas.second), eps_(eps), weight_decay_(weight_decay),
          exp_avg_(Model::gradient_count), exp_avg_sq_(Model::gradient_count) {
        const char* name = Decoupled ? "adamw" : "adam";
        check_lr(lr);
        if (!(eps_ >= 0)) throw error(std::string(name) + ": eps must be >= 0, got " + std::to_string(eps_));
        if (!(beta1_ >= 0 && beta1_ < 1))
            throw error(std::string(name) + ": betas.first must be in [0, 1), got " + std::to_string(beta1_));
        if (!(beta2_ >= 0 && beta2_ < 1))
            throw error(std::string(name) + ": betas.second must be in [0, 1), got " + std::to_string(beta2_));
        if (!(weight_decay_ >= 0))
            throw error(std::string(name) + ": weight_decay must be >= 0, got " + std::to_string(weight_decay_));
    }

    void step() { update(T(1)); }
    void step(T grad_scale) { update(grad_scale); }

    T lr() const noexcept { return lr_; }
    void set_lr(T lr) {
        check_lr(lr);
        lr_ = lr;
    }

    std::uint64_t step_count() const noexcept { return steps_; }
    void set_step_count(std::uint64_t n) noexcept { steps_ = n; }

    /// "exp_avg" and "exp_avg_sq", in the gradient layout. The spans point into the model's
    /// memory: for a device model use state_to_host / state_from_host (state.hpp).
    std::vector<named_state<T>> state_tensors() {
        return {{"exp_avg", {exp_avg_.data(), exp_avg_.size()}}, {"exp_avg_sq", {exp_avg_sq_.data(), exp_avg_sq_.size()}}};
    }
    std::vector<named_state<const T>> state_tensors() const {
        return {{"exp_avg", {exp_avg_.data(), exp_avg_.size()}}, {"exp_avg_sq", {exp_avg_sq_.data(), exp_avg_sq_.size()}}};
    }

    Model& model() const noexcept { return *model_; }

private:
    static void check_lr(T lr) {
        if (!(lr >= 0)) throw error(std::string(Decoupled ? "adamw" : "adam") + ": lr must be >= 0, got " + std::to_string(lr));
    }

    using coefficients = adam_coefficients<T>;

    template <bool L2>
    void update_segments(const coefficients& c) {
        using Exec = exec_t<Model>;
        constexpr std::size_t block = Exec::host_accessible ? 256 : 1;
        T* const m = exp_avg_.data();
        T* const v = exp_avg_sq_.data();
        detail::sweep(*model_, [&](T* p, const T* g, std::size_t s, std::size_t n) {
            Exec::for_each_index((n + block - 1) / block, adam_update<T, L2, block>{p, g, m + s, v + s, n, c},
                                 4 * block);
        });
    }

    void update(T grad_scale) {
        if constexpr (usable) update_all(grad_scale);
    }

    void update_all(T grad_scale) {
        record_pass(pass::update);
        ++steps_;
        const double t = static_cast<double>(steps_);
        const double lr = lr_, beta1 = beta1_, beta2 = beta2_, wd = weight_decay_;
        const double bias_correction1 = 1 - std::pow(beta1, t);
        const double bias_correction2 = 1 - std::pow(beta2, t);
        const coefficients c{grad_scale,
                             Decoupled ? T(0) : weight_decay_,
                             Decoupled ? T(1 - lr * wd) : T(1),
                             beta1_,
                             T(1 - beta1),
                             beta2_,
                             T(1 - beta2),
                             T(-(lr / bias_correction1)),
                             T(std::sqrt(bias_correction2)),
                             eps_};
        if (!Decoupled && weight_decay_ != 0)
            update_segments<true>(c);
        else
            update_segments<false>(c);
    }

    Model* model_;
    T lr_, beta1_, beta2_, eps_, weight_decay_;
    std::uint64_t steps_ = 0;
    state_buffer<Model> exp_avg_, exp_avg_sq_;
};

}  // namespace detail

namespace detail {

/// The public face of adam and adamw: construction from an options struct, and options().
template <class Model, bool Decoupled, class Options>
class adam_with_options : public adam_core<Model, Decoupled> {
public:
    using model_type = Model;
    using value_type = typename Model::value_type;
    using options_type = Options;

    explicit adam_with_options(Model& model, options_type options = {})
        : adam_core<Model, Decoupled>(model, options.lr, options.betas, options.eps, options.weight_decay),
          opts_(options) {}

    /// The options given at construction, with the current lr.
    options_type options() const noexcept {
        options_type o = opts_;
        o.lr = this->lr();
        return o;
    }

private:
    options_type opts_;
};

}  // namespace detail

/// Adam with L2 weight decay added to the gradient (torch.optim.Adam).
template <class Model>
class adam : public detail::adam_with_options<Model, false, adam_options<typename Model::value_type>> {
    using detail::adam_with_options<Model, false, adam_options<typename Model::value_type>>::adam_with_options;
};

/// Adam with decoupled weight decay (torch.optim.AdamW).
template <class Model>
class adamw : public detail::adam_with_options<Model, true, adamw_options<typename Model::value_type>> {
    using detail::adam_with_options<Model, true, adamw_options<typename Model::value_type>>::adam_with_options;
};

template <class Model>
adam(Model&, adam_options<typename Model::value_type>) -> adam<Model>;
template <class Model>
adam(Model&) -> adam<Model>;
template <class Model>
adamw(Model&, adamw_options<typename Model::value_type>) -> adamw<Model>;
template <class Model>
adamw(Model&) -> adamw<Model>;

}  // namespace ctdl::optim
