#pragma once
// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_).
//
//   norm  = sqrt(sum of g^2 over every trainable gradient)
//   scale = max_norm / (norm + 1e-6)
//   g    *= scale                        (only if scale < 1)
//
//   const double norm = ctdl::optim::clip_grad_norm(net, 1.0);   // a reduce pass, and a map pass if it clips
//
// The sum is accumulated in double in a fixed order (segment by segment, eight interleaved
// partial sums added in order at the end), so it does not depend on the thread count.
// A norm that is not finite (an inf or NaN gradient) leaves the gradients as they are; the
// caller sees it in the returned value.
//
// For a device model the sum of squares is one Exec::sum per trainable segment (in double,
// in the device system's order) and the scaling one Exec::for_each_index per segment.
//
// To fold the clipping into the optimizer pass instead: opt.step(clip_scale(grad_norm(net), max_norm)).
#include <cmath>
#include <cstddef>
#include <string>

#include "../core/error.hpp"
#include "../exec/hd.hpp"
#include "../exec/pass_count.hpp"
#include "policy.hpp"
#include "segment.hpp"

namespace ctdl::optim {

namespace detail {

template <class T>
struct square_of {
    const T* g;
    CTDL_HD double operator()(std::size_t i) const {
        const double x = static_cast<double>(g[i]);
        return x * x;
    }
};

template <class T>
struct scale_by {
    T* g;
    T k;
    CTDL_HD void operator()(std::size_t i) const { g[i] *= k; }
};

}  // namespace detail

/// The global L2 norm of the trainable gradients, in double (one reduce pass).
template <optimizable Model>
double grad_norm(Model& model) {
    static_assert(gradient_segments_must_lie_within_gradient_count<Model>::value);
    record_pass(pass::reduce);
    const auto* const grads = model.gradients();
    if constexpr (!detail::host_model<Model>) {
        using T = typename Model::value_type;
        double sum = 0;
        for (const segment& s : Model::gradient_segments)
            sum += Model::exec_type::sum(s.size, detail::square_of<T>{grads + s.grad_offset});
        return std::sqrt(sum);
    } else {
        double lane[8] = {};
        for (const segment& s : Model::gradient_segments) {
            const auto* g = grads + s.grad_offset;
            std::size_t i = 0;
            for (; i + 8 <= s.size; i += 8)
                for (std::size_t j = 0; j < 8; ++j) {
                    const double x = static_cast<double>(g[i + j]);
                    lane[j] += x * x;
                }
            for (std::size_t j = 0; i + j < s.size; ++j) {
                const double x = static_cast<double>(g[i + j]);
                lane[j] += x * x;
            }
        }
        double sum = 0;
        for (double l : lane) sum += l;
        return std::sqrt(sum);
    }
}

/// The factor clip_grad_norm applies for a given norm: min(1, max_norm / (norm + 1e-6)),
/// and 1 when norm is not finite.
inline double clip_scale(double norm, double max_norm) noexcept {
    if (!std::isfinite(norm)) return 1;
    const double scale = max_norm / (norm + 1e-6);
    return scale < 1 ? scale : 1;
}

/// Scales the trainable gradients so that their global L2 norm is at most max_norm and
/// returns the norm before clipping.
template <optimizable Model>
double clip_grad_norm(Model& model, double max_norm) {
    if (!(max_norm >= 0)) throw error("clip_grad_norm: max_norm must be >= 0, got " + std::to_string(max_norm));
    const double norm = grad_norm(model);
    const double scale = clip_scale(norm, max_norm);
    if (scale < 1) {
        record_pass(pass::map);
        using T = typename Model::value_type;
        const T k = static_cast<T>(scale);
        T* const grads = model.gradients();
        if constexpr (detail::host_model<Model>) {
            for (const segment& s : Model::gradient_segments) {
                T* const g = grads + s.grad_offset;
                for (std::size_t i = 0; i < s.size; ++i) g[i] *= k;
            }
        } else {
            for (const segment& s : Model::gradient_segments)
                Model::exec_type::for_each_index(s.size, detail::scale_by<T>{grads + s.grad_offset, k});
        }
    }
    return norm;
}

}  // namespace ctdl::optim
