#pragma once
// The training loop for next-token prediction (usable from user code):
//
//   ctdl::train::options o{.steps = 2000, .peak_lr = 3e-3, .eval_every = 200, ...};
//   auto report = ctdl::train::run<16, 64>(net, opt, dataset, data_rng, o);
//
// Each step: lr from linear warmup + cosine decay; `grad_accumulation` micro-batches whose
// gradients add up in the model's gradient buffer; the global gradient norm, clipped to
// `clip_norm` and folded with 1/accumulation into the optimizer's one fused pass; a
// NaN or inf loss or gradient stops training with ctdl::error, leaving the last
// checkpoint as it was. Every `eval_every` steps the validation loss over whole windows;
// every `checkpoint_every` steps an atomic checkpoint. A progress line on stderr, a CSV
// log and an SVG loss plot, when paths are given.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <type_traits>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/random.hpp"
#include "../core/shape.hpp"
#include "../core/tensor.hpp"
#include "../core/transfer.hpp"
#include "../data/text_dataset.hpp"
#include "../loss/cross_entropy.hpp"
#include "../nn/layer.hpp"
#include "../optim/clip.hpp"
#include "../optim/schedule.hpp"
#include "checkpoint.hpp"
#include "log.hpp"

namespace ctdl::train {

struct options {
    std::uint64_t steps = 1000;    ///< the run's length: the schedule spans it
    std::uint64_t stop_after = 0;  ///< stop once this many steps are done (0: at `steps`), e.g. to resume later
    std::uint64_t grad_accumulation = 1;
    double peak_lr = 1e-3, min_lr = 1e-4;
    std::uint64_t warmup_steps = 100;
    double clip_norm = 1.0;  ///< 0: no clipping
    std::uint64_t eval_every = 100, eval_batches = 8;
    std::uint64_t checkpoint_every = 0;  ///< 0: only at the end (when a path is given)
    std::filesystem::path checkpoint, csv, plot;
    std::map<std::string, std::string> checkpoint_metadata;  ///< e.g. the tokenizer
    bool progress = true;
    std::size_t progress_every = 20;
};

struct report {
    std::uint64_t steps = 0;  ///< the step count at the end
    double train_loss = 0;    ///< mean over the last step's micro-batches
    std::optional<double> validation_loss;
    std::vector<loss_point> train_curve, validation_curve;
    double seconds = 0, tokens_per_second = 0;
};

/// Mean cross-entropy over up to `batches` whole batches of validation windows.
template <std::size_t B, std::size_t T, class Model>
double validation_loss(Model& net, const data::text_dataset& ds, std::uint64_t batches) {
    using Exec = typename Model::exec_type;
    const std::size_t windows = ds.window_count(data::split::validation, T);
    if (windows < B) ds.require_window(data::split::validation, T);
    tensor<int, shape<B, T>> x, y;
    tensor<typename Model::value_type, output_shape<typename Model::arch_type, shape<B, T>>, Exec> logits;
    double total = 0;
    std::uint64_t used = 0;
    for (std::size_t first = 0; used < batches && first + B <= windows; first += B, ++used) {
        ds.fill_windows(data::split::validation, first, x, y);
        if constexpr (Exec::host_accessible) {
            net.forward(x, logits);
            total += static_cast<double>(loss::cross_entropy(logits, y));
        } else {
            const auto xd = to<Exec>(x);
            const auto yd = to<Exec>(y);
            net.forward(xd, logits);
            total += static_cast<double>(loss::cross_entropy(logits, yd));
        }
    }
    if (used == 0)
        throw error("validation: the validation split has " + std::to_string(windows) + " windows of " +
                    std::to_string(T) + " tokens; a batch needs " + std::to_string(B));
    return total / static_cast<double>(used);
}

/// Trains from the optimizer's current step count up to o.steps; returns the curves.
template <std::size_t B, std::size_t T, class Model, class Optimizer>
report run(Model& net, Optimizer& opt, const data::text_dataset& ds, rng& data_rng, const options& o) {
    using V = typename Model::value_type;
    using Exec = typename Model::exec_type;
    if (o.grad_accumulation == 0) throw error("train: grad_accumulation must be at least 1");
    ds.require_window(data::split::train, T);
    const optim::warmup_cosine schedule{o.peak_lr, o.warmup_steps, o.steps, o.min_lr};
    const std::uint64_t start = opt.step_count();
    std::optional<csv_log> csv;
    if (!o.csv.empty()) csv.emplace(o.csv, start == 0 ? csv_log::mode::truncate : csv_log::mode::append);
    std::optional<progress> bar;
    if (o.progress)
        bar.emplace(o.steps, B * T * o.grad_accumulation,
                    progress_options{.every = o.progress_every, .start_step = static_cast<std::size_t>(start)});

    auto& acts = net.template activations_for<shape<B, T>, int>();
    tensor<int, shape<B, T>> x, y;
    std::conditional_t<Exec::host_accessible, std::nullptr_t, tensor<int, shape<B, T>, Exec>> xd{}, yd{};
    report r;
    r.steps = start;
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t end = o.stop_after ? std::min(o.stop_after, o.steps) : o.steps;
    for (std::uint64_t step = start; step < end; ++step) {
        opt.set_lr(static_cast<V>(schedule(step)));
        double loss_sum = 0;
        for (std::uint64_t micro = 0; micro < o.grad_accumulation; ++micro) {
            ds.sample_batch(data::split::train, data_rng, x, y);
            if constexpr (Exec::host_accessible) {
                const auto& logits = net.forward(x, acts);
                loss_sum += static_cast<double>(loss::cross_entropy.forward_backward(logits, y, acts.dout));
                net.backward(acts, x, acts.dout, micro > 0);
            } else {
                xd = to<Exec>(x);
                yd = to<Exec>(y);
                const auto& logits = net.forward(xd, acts);
                loss_sum += static_cast<double>(loss::cross_entropy.forward_backward(logits, yd, acts.dout));
                net.backward(acts, xd, acts.dout, micro > 0);
            }
        }
        const double mean_loss = loss_sum / static_cast<double>(o.grad_accumulation);
        // The accumulated gradient is a sum over micro-batches: its mean is 1/accumulation of it.
        const double norm = optim::grad_norm(net) / static_cast<double>(o.grad_accumulation);
        if (!std::isfinite(mean_loss) || !std::isfinite(norm))
            throw error("train: step " + std::to_string(step + 1) + " gave a " +
                        (std::isfinite(mean_loss) ? "non-finite gradient norm" : "non-finite loss") +
                        " (loss " + std::to_string(mean_loss) + ", gradient norm " + std::to_string(norm) +
                        "); stopped before updating" +
                        (o.checkpoint.empty() ? std::string() : "; the last checkpoint '" + o.checkpoint.string() +
                                                                     "' is as it was"));
        const double clip = o.clip_norm > 0 ? optim::clip_scale(norm, o.clip_norm) : 1.0;
        opt.step(static_cast<V>(clip / static_cast<double>(o.grad_accumulation)));
        const std::uint64_t done = step + 1;
        r.train_loss = mean_loss;
        r.train_curve.push_back({static_cast<double>(done), mean_loss});
        std::optional<double> val;
        if ((o.eval_every && done % o.eval_every == 0) || done == end) {
            val = validation_loss<B, T>(net, ds, o.eval_batches);
            r.validation_curve.push_back({static_cast<double>(done), *val});
            r.validation_loss = val;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double tokens_per_s = static_cast<double>((done - start) * B * T * o.grad_accumulation) / seconds;
        if (bar) bar->update(done, mean_loss, val);
        if (csv) csv->row(done, mean_loss, val, static_cast<double>(opt.lr()), tokens_per_s, seconds);
        if (!o.checkpoint.empty() && ((o.checkpoint_every && done % o.checkpoint_every == 0) || done == end))
            save_checkpoint(o.checkpoint, net, opt, done, data_rng, o.checkpoint_metadata);
        r.steps = done;
        r.seconds = seconds;
        r.tokens_per_second = tokens_per_s;
    }
    if (bar) bar->finish();
    if (!o.plot.empty() && !(r.train_curve.empty() && r.validation_curve.empty()))
        write_loss_plot_svg(o.plot, r.train_curve, r.validation_curve, "training and validation loss");
    return r;
}

}  // namespace ctdl::train
