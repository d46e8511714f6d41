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
// checkpoint as it was. Every `eval_every` steps and after the last step, the validation
// loss over the validation split's non-overlapping windows (validation_loss); every
// `checkpoint_every` steps and after the last step an atomic checkpoint. A progress line
// on stderr, a CSV log and an SVG loss plot, when paths are given.
//
// The data, the options and the output folders are checked before any output is touched,
// so a run that cannot start leaves an earlier run's files as they were. The CSV log is
// replaced (atomically, with every row so far) together with each checkpoint, and also at
// every `checkpoint_every` steps when no checkpoint path is given, so it always ends at
// the step of the checkpoint next to it (a resumed run keeps the rows up to its start);
// the plot is written at the end.
//
// The data is a batch source (train/batch_source.hpp): a data::text_dataset for
// pretraining, whose batches count every target; or one with a loss mask, such as
// data::sft_dataset for supervised fine-tuning, whose batches carry a mask [B, T] that
// weighs each target (1 on response tokens, 0 on prompt and padding). With a mask, a
// micro-batch's loss and gradient are cross_entropy's masked mean over its counted targets
// (micro-batches are then averaged as above), and the validation loss is the mean over every
// counted target of the rows it evaluates. Everything else is the same for both.
//
// run(net, opt, ds, rng, o, peers) trains on several processes (train/peers.hpp,
// dist/data_parallel.hpp): each takes the root's state at the start; in each step all draw
// the same size() batches of B rows in turn from the shared data position, and process r
// trains on the r-th (so P processes with B rows read what one with P · B reads); each
// reduces gradients while its backward pass runs and steps with the mean gradient (with a
// mask, each process's masked mean is one share of it, as a micro-batch's is); the loss and
// the validation loss are means over all processes; only the root writes the progress, the
// log, the plot and the checkpoints, while the others wait for it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <type_traits>
#include <filesystem>
#include <initializer_list>
#include <optional>
#include <string>
#include <system_error>
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
#include "batch_source.hpp"
#include "checkpoint.hpp"
#include "log.hpp"
#include "peers.hpp"
#include "train_step.hpp"

namespace ctdl::train {

struct options {
    std::uint64_t steps = 1000;    ///< the run's length: the schedule spans it
    std::uint64_t stop_after = 0;  ///< stop once this many steps are done (0: at `steps`), e.g. to resume later
    std::uint64_t grad_accumulation = 1;
    double peak_lr = 1e-3, min_lr = 1e-4;
    std::uint64_t warmup_steps = 100;
    double clip_norm = 1.0;  ///< 0: no clipping
    std::uint64_t eval_every = 100, eval_batches = 8;
    std::uint64_t checkpoint_every = 0;  ///< 0: only at the end (checkpoint and CSV, when paths are given)
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

/// Mean cross-entropy per predicted token over the validation split's non-overlapping
/// windows of T tokens (data::text_dataset::windows), in order, B to a batch, up to
/// `batches` batches: the first min(batches · B, windows) windows, each counted once. The
/// last batch may be partly filled; its empty rows are not counted. ctdl::error if the split
/// holds no window of T tokens or batches is 0. With peers (train/peers.hpp), each of
/// size() processes evaluates batches of B, process r the batches r, r + size(), ... of the
/// first batches · size(), and the sums are added over the processes.
template <std::size_t B, std::size_t T, class Model, class Dataset, class Peers = one_process>
    requires(token_batch_source<Dataset, B, T> && !masked_batch_source<Dataset, B, T>)
double validation_loss(Model& net, const Dataset& ds, std::uint64_t batches, Peers&& peers = {}) {
    using Exec = typename Model::exec_type;
    if (batches == 0) throw error("validation: the number of batches (eval_batches) must be at least 1");
    const std::size_t windows = ds.windows(data::split::validation, T).size();  // ctdl::error if none
    tensor<int, shape<B, T>> x, y;
    tensor<typename Model::value_type, output_shape<typename Model::arch_type, shape<B, T>>, Exec> logits;
    // Rows past a batch's real windows get this target and weigh nothing.
    constexpr int padding = -1;
    const loss::cross_entropy_t real_rows{.ignore_index = padding};
    double total = 0;
    std::size_t counted = 0, seen = 0;
    const std::uint64_t all_batches = batches * static_cast<std::uint64_t>(peers.size());
    for (std::uint64_t used = 0; used < all_batches && seen < windows; ++used, seen += B) {
        if (used % static_cast<std::uint64_t>(peers.size()) != static_cast<std::uint64_t>(peers.rank())) continue;
        const std::size_t rows = ds.fill_windows(data::split::validation, seen, x, y);
        std::fill(y.data() + rows * T, y.data() + B * T, padding);
        double mean;  // over the rows * T real positions
        if constexpr (Exec::host_accessible) {
            net.forward(x, logits);
            mean = static_cast<double>(real_rows(logits, y));
        } else {
            const auto xd = to<Exec>(x);
            const auto yd = to<Exec>(y);
            net.forward(xd, logits);
            mean = static_cast<double>(real_rows(logits, yd));
        }
        total += mean * static_cast<double>(rows);
        counted += rows;
    }
    if (peers.size() == 1) return total / static_cast<double>(counted);
    return peers.sum(total) / peers.sum(static_cast<double>(counted));
}

/// For a masked batch source: the mean cross-entropy per counted target (Σ mask · loss /
/// Σ mask) over the validation split's rows, in order, B to a batch, up to `batches`
/// batches: the first min(batches · B, rows) rows, each counted once (the rows past them in
/// the last batch have mask 0). ctdl::error if batches is 0, or if those rows hold no
/// counted target. With peers: as for a token source, the batches shared round the processes.
template <std::size_t B, std::size_t T, class Model, class Dataset, class Peers = one_process>
    requires masked_batch_source<Dataset, B, T>
double validation_loss(Model& net, const Dataset& ds, std::uint64_t batches, Peers&& peers = {}) {
    using Exec = typename Model::exec_type;
    if (batches == 0) throw error("validation: the number of batches (eval_batches) must be at least 1");
    ds.require_window(data::split::validation, T);
    const std::size_t rows = ds.rows(data::split::validation);
    tensor<int, shape<B, T>> x, y;
    tensor<float, shape<B, T>> mask;
    tensor<typename Model::value_type, output_shape<typename Model::arch_type, shape<B, T>>, Exec> logits;
    double total = 0, weight = 0;
    std::size_t counted = 0, seen = 0;
    const std::uint64_t all_batches = batches * static_cast<std::uint64_t>(peers.size());
    for (std::uint64_t used = 0; used < all_batches && seen < rows; ++used, seen += B) {
        if (used % static_cast<std::uint64_t>(peers.size()) != static_cast<std::uint64_t>(peers.rank())) continue;
        counted += ds.fill_rows(data::split::validation, seen, x, y, mask);
        double w = 0;  // Σ mask of this batch
        for (std::size_t i = 0; i < B * T; ++i) w += static_cast<double>(mask.data()[i]);
        double mean;  // over the batch's counted targets
        if constexpr (Exec::host_accessible) {
            net.forward(x, logits);
            mean = static_cast<double>(loss::cross_entropy(logits, y, mask));
        } else {
            const auto xd = to<Exec>(x);
            const auto yd = to<Exec>(y);
            const auto md = to<Exec>(mask);
            net.forward(xd, logits);
            mean = static_cast<double>(loss::cross_entropy(logits, yd, md));
        }
        total += mean * w;
        weight += w;
    }
    if (peers.size() > 1) {
        total = peers.sum(total);
        weight = peers.sum(weight);
        counted = std::min(rows, static_cast<std::size_t>(all_batches) * B);
    }
    if (!(weight > 0))
        throw error("validation: the " + std::to_string(counted) +
                    " validation rows evaluated hold no target with a mask weight above 0");
    return total / weight;
}

/// Named after the mistake, with the optimizer in its name (ctdl::optimizer: core/concepts.hpp).
template <class Optimizer>
struct run_optimizer_must_be_an_optimizer {
    static constexpr bool value = optimizer<Optimizer>;
    static_assert(value, "train::run: the optimizer must offer model_type, usable, step(), step(scale), lr(), "
                         "set_lr(lr), step_count(), set_step_count(n), state_tensors() and model() "
                         "(ctdl::optimizer), as optim::sgd, adam and adamw do");
};

/// run, for an optimizer and a batch source (checked by run below).
template <std::size_t B, std::size_t T, class Model, class Optimizer, class Dataset, class Peers>
report run_checked(Model& net, Optimizer& opt, const Dataset& ds, rng& data_rng, const options& o, Peers& peers) {
    using V = typename Model::value_type;
    using Exec = typename Model::exec_type;
    constexpr bool masked = masked_batch_source<Dataset, B, T>;
    // Everything that can be checked is checked before any output is touched: a run that
    // cannot start leaves an earlier run's checkpoint, log and plot as they were. On several
    // processes, a failed check on any of them stops all of them (peers.collectively).
    static_assert(optimizer_was_made_for_another_model_type<Optimizer, Model>::value);
    check_optimizer_follows(opt, net, "train::run");
    peers.share_state(net, opt, data_rng);
    const std::uint64_t start = opt.step_count();
    const std::uint64_t end = o.stop_after ? std::min(o.stop_after, o.steps) : o.steps;
    const double shares = static_cast<double>(o.grad_accumulation) * peers.size();  // the gradient is a sum of them
    std::optional<progress> bar;
    std::optional<staged_csv_log> csv;
    peers.collectively("checking the data, the options and the output folders", [&] {
        if (o.grad_accumulation == 0) throw error("train: grad_accumulation must be at least 1");
        ds.require_window(data::split::train, T);
        if (start < end) {  // the last step is evaluated
            if (o.eval_batches == 0) throw error("train: eval_batches must be at least 1");
            ds.require_window(data::split::validation, T);
        }
        if (!peers.root()) return;  // only the root writes
        for (const std::filesystem::path* p : {&o.checkpoint, &o.csv, &o.plot}) {
            if (p->empty()) continue;
            const std::filesystem::path dir = p->has_parent_path() ? p->parent_path() : ".";
            std::error_code ec;
            if (!std::filesystem::is_directory(dir, ec))
                throw error("train: cannot write '" + p->string() + "': '" + dir.string() + "' is not a directory");
            if (std::filesystem::is_directory(*p, ec))
                throw error("train: cannot write '" + p->string() + "': it is a directory");
        }
        if (o.progress)
            bar.emplace(o.steps, B * T * o.grad_accumulation * static_cast<std::size_t>(peers.size()),
                        progress_options{.every = o.progress_every, .start_step = static_cast<std::size_t>(start)});
        // The log reaches its file with each checkpoint and at the end (staged_csv_log): when
        // resuming, an existing log (checked here) keeps its rows up to the checkpoint's step.
        if (!o.csv.empty())
            csv.emplace(o.csv, start == 0 ? csv_log::mode::truncate : csv_log::mode::append,
                        static_cast<std::size_t>(start));
    });
    const optim::warmup_cosine schedule{o.peak_lr, o.warmup_steps, o.steps, o.min_lr};

    auto& acts = net.template activations_for<shape<B, T>, int>();
    tensor<int, shape<B, T>> x, y;
    std::conditional_t<Exec::host_accessible, std::nullptr_t, tensor<int, shape<B, T>, Exec>> xd{}, yd{};
    std::conditional_t<masked, tensor<float, shape<B, T>>, std::nullptr_t> mask{};
    std::conditional_t<masked && !Exec::host_accessible, tensor<float, shape<B, T>, Exec>, std::nullptr_t> maskd{};
    // The batches of the other processes (drawn, not used: every process draws all size()
    // batches of a micro-batch in turn, so the data position stays the same everywhere).
    tensor<int, shape<B, T>> other_x, other_y;
    std::conditional_t<masked, tensor<float, shape<B, T>>, std::nullptr_t> other_mask{};
    const auto draw = [&](auto& bx, auto& by, auto& bmask) {
        if constexpr (masked)
            ds.sample_batch(data::split::train, data_rng, bx, by, bmask);
        else
            ds.sample_batch(data::split::train, data_rng, bx, by);
    };
    // The micro-batch's mean loss, and its gradient into acts.dout: masked when the data is.
    const auto loss_and_gradient = [&](const auto& logits, const auto& targets, const auto& weights) -> double {
        if constexpr (masked)
            return static_cast<double>(loss::cross_entropy.forward_backward(logits, targets, weights, acts.dout));
        else
            return static_cast<double>(loss::cross_entropy.forward_backward(logits, targets, acts.dout));
    };
    report r;
    r.steps = start;
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t step = start; step < end; ++step) {
        opt.set_lr(static_cast<V>(schedule(step)));
        double loss_sum = 0;
        for (std::uint64_t micro = 0; micro < o.grad_accumulation; ++micro) {
            for (int r = 0; r < peers.size(); ++r) {
                if (r == peers.rank()) draw(x, y, mask);
                else draw(other_x, other_y, other_mask);
            }
            const bool last = micro + 1 == o.grad_accumulation;
            if constexpr (Exec::host_accessible) {
                const auto& logits = net.forward(x, acts);
                loss_sum += loss_and_gradient(logits, y, mask);
                peers.backward(net, acts, x, acts.dout, micro > 0, last);
            } else {
                xd = to<Exec>(x);
                yd = to<Exec>(y);
                if constexpr (masked) maskd = to<Exec>(mask);
                const auto& logits = net.forward(xd, acts);
                loss_sum += loss_and_gradient(logits, yd, maskd);
                peers.backward(net, acts, xd, acts.dout, micro > 0, last);
            }
        }
        peers.reduce_gradients();
        const double mean_loss = peers.sum(loss_sum) / shares;
        // The gradient is a sum over micro-batches and processes: its mean is 1/shares of it.
        const double norm = optim::grad_norm(net) / shares;
        if (!std::isfinite(mean_loss) || !std::isfinite(norm))
            throw error("train: step " + std::to_string(step + 1) + " gave a " +
                        (std::isfinite(mean_loss) ? "non-finite gradient norm" : "non-finite loss") +
                        " (loss " + std::to_string(mean_loss) + ", gradient norm " + std::to_string(norm) +
                        "); stopped before updating" +
                        (o.checkpoint.empty() ? std::string() : "; the last checkpoint '" + o.checkpoint.string() +
                                                                     "' is as it was"));
        const double clip = o.clip_norm > 0 ? optim::clip_scale(norm, o.clip_norm) : 1.0;
        opt.step(static_cast<V>(clip / shares));
        const std::uint64_t done = step + 1;
        r.train_loss = mean_loss;
        r.train_curve.push_back({static_cast<double>(done), mean_loss});
        std::optional<double> val;
        if ((o.eval_every && done % o.eval_every == 0) || done == end) {
            val = validation_loss<B, T>(net, ds, o.eval_batches, peers);
            r.validation_curve.push_back({static_cast<double>(done), *val});
            r.validation_loss = val;
        }
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double tokens_per_s = static_cast<double>((done - start) * B * T * o.grad_accumulation) *
                                    peers.size() / seconds;
        if (bar) bar->update(done, mean_loss, val);
        if (csv) csv->row(done, mean_loss, val, static_cast<double>(opt.lr()), tokens_per_s, seconds);
        if ((o.checkpoint_every && done % o.checkpoint_every == 0) || done == end) {
            peers.collectively("writing the checkpoint", [&] {  // the root writes, the others wait
                if (!peers.root()) return;
                if (!o.checkpoint.empty())
                    save_checkpoint(o.checkpoint, net, opt, done, data_rng, o.checkpoint_metadata);
                if (csv) csv->commit();
            });
        }
        r.steps = done;
        r.seconds = seconds;
        r.tokens_per_second = tokens_per_s;
    }
    if (bar) bar->finish();
    if (peers.root() && !o.plot.empty() && !(r.train_curve.empty() && r.validation_curve.empty()))
        write_loss_plot_svg(o.plot, r.train_curve, r.validation_curve, "training and validation loss");
    return r;
}

/// Named after the mistake, with the data's type in its name (train/batch_source.hpp).
template <class Dataset, std::size_t B, std::size_t T>
struct run_data_must_be_a_batch_source {
    static constexpr bool value = token_batch_source<Dataset, B, T> || masked_batch_source<Dataset, B, T>;
    static_assert(value, "train::run: the data must be a batch source (train/batch_source.hpp): "
                         "require_window(split, T), and sample_batch(split, rng, x, y) with windows and "
                         "fill_windows as data::text_dataset offers them, or sample_batch(split, rng, x, y, mask) "
                         "with rows and fill_rows as data::sft_dataset offers them");
};

/// Trains from the optimizer's current step count up to o.steps; returns the curves. ds is
/// a data::text_dataset, a data::sft_dataset, or any other batch source.
template <std::size_t B, std::size_t T, class Model, class Optimizer, class Dataset>
report run(Model& net, Optimizer& opt, const Dataset& ds, rng& data_rng, const options& o) {
    one_process alone;
    if constexpr (!run_optimizer_must_be_an_optimizer<Optimizer>::value)
        return {};  // refused at compile time above; nothing more to report
    else if constexpr (!run_data_must_be_a_batch_source<Dataset, B, T>::value)
        return {};
    else
        return run_checked<B, T>(net, opt, ds, data_rng, o, alone);
}

/// The same on the processes of peers (dist::data_parallel): B rows per process and step.
template <std::size_t B, std::size_t T, class Model, class Optimizer, class Dataset, class Peers>
report run(Model& net, Optimizer& opt, const Dataset& ds, rng& data_rng, const options& o, Peers& peers) {
    if constexpr (!run_optimizer_must_be_an_optimizer<Optimizer>::value)
        return {};  // refused at compile time above; nothing more to report
    else if constexpr (!run_data_must_be_a_batch_source<Dataset, B, T>::value)
        return {};
    else
        return run_checked<B, T>(net, opt, ds, data_rng, o, peers);
}

}  // namespace ctdl::train
