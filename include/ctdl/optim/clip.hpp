#pragma once
// Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_).
//
//   norm  = sqrt(sum of g^2 over every trainable gradient)
//   scale = max_norm / (norm + 1e-6)
//   g    *= scale                        (only if scale < 1)
//
//   const double norm = ctdl::optim::clip_grad_norm(net, 1.0);   // a reduce pass, and a map pass if it clips
//
// One path for every policy (a model without exec_type runs under ctdl::cpu, sweep.hpp):
// the sum of squares is one Exec::sum per trainable segment over chunks of 4096 gradients,
// each chunk summed in double in the lanes of ops/common/lanes.hpp, and the scaling is one
// Exec::for_each_index per segment. The order of the sum depends on the segment sizes and
// the policy alone, so it does not depend on the thread count. A norm that is not finite
// (an inf or NaN gradient) leaves the gradients as they are; the caller sees it in the
// returned value.
//
// To fold the clipping into the optimizer pass instead: opt.step(clip_scale(grad_norm(net), max_norm)).
#include <cmath>
#include <cstddef>
#include <string>

#include "../core/error.hpp"
#include "../exec/hd.hpp"
#include "../exec/pass_count.hpp"
#include "../ops/common/lanes.hpp"
#include "sweep.hpp"
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

/// Σ g[i]² over chunk k of a segment of n gradients, in double (one index of Exec::sum).
template <class T>
struct chunk_squares {
    static constexpr std::size_t chunk = 4096;
    const T* g;
    std::size_t n;
    CTDL_HD double operator()(std::size_t k) const {
        const std::size_t b = k * chunk;
        const std::size_t len = n - b < chunk ? n - b : chunk;
        return ops::lane_sum<double>(len, square_of<T>{g + b});
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
    using T = typename Model::value_type;
    using square_sum = detail::chunk_squares<T>;
    double sum = 0;
    detail::sweep(model, [&](const T*, const T* g, std::size_t, std::size_t n) {
        sum += detail::exec_t<Model>::sum((n + square_sum::chunk - 1) / square_sum::chunk, square_sum{g, n});
    });
    return std::sqrt(sum);
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
        detail::sweep(model, [&](T*, T* g, std::size_t, std::size_t n) {
            detail::exec_t<Model>::for_each_index(n, detail::scale_by<T>{g, k});
        });
    }
    return norm;
}

}  // namespace ctdl::optim
