#pragma once
// The one loop every optimizer update runs: over the trainable ranges of a model, split
// over the cpu thread pool when the model is large.
//
// for_each_trainable(model, f) calls f(param, grad, state, n): n consecutive trainable
// elements, param and grad point into the model's flat buffers and state is the index of
// the first element in the gradient layout, where optimizer state lives. The trainable
// elements (the segments, concatenated in order) are split into one contiguous block per
// thread. Updates are elementwise, so the result does not depend on the split: it is
// bitwise the same for every thread count.
#include <algorithm>
#include <cstddef>

#include "../exec/cpu/pool.hpp"
#include "segment.hpp"

namespace ctdl::optim::detail {

/// No thread gets fewer trainable elements than this (smaller models run serially).
inline constexpr std::size_t parallel_grain = std::size_t{1} << 15;

template <optimizable Model, class F>
void for_each_trainable(Model& model, F&& f) {
    static_assert(gradient_segments_must_lie_within_gradient_count<Model>::value);
    using T = typename Model::value_type;
    T* const params = model.parameters();
    T* const grads = model.gradients();
    constexpr std::size_t total = trainable_count<Model>;

    // Elements [begin, end) of the concatenated segments.
    auto range = [&](std::size_t begin, std::size_t end) {
        std::size_t base = 0;
        for (const segment& s : Model::gradient_segments) {
            const std::size_t lo = std::max(begin, base), hi = std::min(end, base + s.size);
            if (lo < hi) {
                const std::size_t k = lo - base;
                f(params + s.param_offset + k, grads + s.grad_offset + k, s.grad_offset + k, hi - lo);
            }
            base += s.size;
        }
    };

    if constexpr (total >= 2 * parallel_grain) {
        thread_pool& pool = cpu_pool();
        if (pool.size() > 1) {
            pool.run([&](std::size_t t, std::size_t n) {
                const std::size_t used = std::min(n, total / parallel_grain);
                if (t >= used) return;
                const auto [b, e] = thread_pool::split(total, t, used);
                range(b, e);
            });
            return;
        }
    }
    range(0, total);
}

}  // namespace ctdl::optim::detail
