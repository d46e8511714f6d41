#pragma once
// Learning-rate schedules: pure functions from the step index to a learning rate.
//
//   ctdl::optim::warmup_cosine sched{.peak_lr = 3e-4, .warmup_steps = 100, .total_steps = 5000, .min_lr = 3e-5};
//   for (std::uint64_t step = 0; step < 5000; ++step) {
//       opt.set_lr(sched(step));
//       ...
//   }
#include <cmath>
#include <cstdint>
#include <numbers>

namespace ctdl::optim {

/// lr(step) = lr for every step.
struct constant_lr {
    double lr = 1e-3;
    constexpr double operator()(std::uint64_t) const noexcept { return lr; }
};

/// Linear warmup, then cosine decay. With W = warmup_steps, N = total_steps:
///
///   lr(s) = peak_lr * s / W                                               for s < W
///   lr(s) = min_lr + (peak_lr - min_lr) * (1 + cos(pi * (s - W) / (N - W))) / 2   for W <= s < N
///   lr(s) = min_lr                                                        for s >= N
///
/// So lr(0) = 0 (the warmup starts at 0; with W = 0 there is no warmup and lr(0) = peak_lr),
/// lr(W) = peak_lr, the decay is continuous, and lr(N) = min_lr onwards. If N <= W the
/// schedule drops to min_lr at the end of the warmup.
struct warmup_cosine {
    double peak_lr = 1e-3;
    std::uint64_t warmup_steps = 0;
    std::uint64_t total_steps = 0;
    double min_lr = 0;

    double operator()(std::uint64_t step) const noexcept {
        if (step < warmup_steps) return peak_lr * static_cast<double>(step) / static_cast<double>(warmup_steps);
        if (step >= total_steps) return min_lr;
        const double progress =
            static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps);
        return min_lr + (peak_lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
    }
};

}  // namespace ctdl::optim
