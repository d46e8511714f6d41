#pragma once
// The progress line of a training run (stderr; a redrawn bar on a terminal).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iostream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include <unistd.h>

#include "../core/error.hpp"
#include "format.hpp"

namespace ctdl::train {

struct progress_options {
    std::size_t every = 10;         // plain mode: print a line every this many steps
    std::size_t bar_width = 30;     // terminal mode: characters inside [ ]
    double redraw_seconds = 0.1;    // terminal mode: redraw at most this often (the last step always)
    std::size_t start_step = 0;     // steps already done before this run (when resuming)
};

/// A progress report: step/total, loss, validation loss when measured, tokens per second,
/// elapsed time and ETA. On a terminal it redraws one line with '\r'; otherwise it writes a
/// plain line every `every` steps, at the first and last step, and whenever a validation
/// loss is given:
///   step 100/5000 | loss 2.3456 | val 2.4012 | 12.3k tok/s | 1m05s elapsed | eta 4m10s
/// Rates and the ETA average over all steps since start_step.
class progress {
public:
    using clock = std::chrono::steady_clock;

    /// Reports on stderr, as a bar if stderr is a terminal.
    progress(std::size_t total_steps, std::size_t tokens_per_step, progress_options opt = {})
        : progress(std::cerr, ::isatty(2) == 1, total_steps, tokens_per_step, opt) {}

    /// Reports on out; terminal selects the redrawn bar.
    progress(std::ostream& out, bool terminal, std::size_t total_steps, std::size_t tokens_per_step,
             progress_options opt = {})
        : out_(&out), terminal_(terminal), total_(total_steps), tokens_per_step_(tokens_per_step), opt_(opt),
          start_(clock::now()) {
        if (total_steps == 0) throw error("progress: total_steps must be at least 1");
        if (opt.every == 0) throw error("progress: options.every must be at least 1");
        if (opt.start_step > total_steps)
            throw error("progress: start_step " + std::to_string(opt.start_step) + " is past total_steps " +
                        std::to_string(total_steps));
        last_step_ = opt.start_step;
    }

    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;
    ~progress() {
        if (terminal_ && drawn_ && !finished_) *out_ << '\n' << std::flush;
    }

    /// Reports that `step` steps are done, with the latest training loss (and validation loss, if measured).
    void update(std::size_t step, double loss, std::optional<double> val_loss = std::nullopt) {
        update(step, loss, val_loss, std::chrono::duration<double>(clock::now() - start_).count());
    }

    /// The same, with the elapsed wall time given (for tests and external clocks).
    void update(std::size_t step, double loss, std::optional<double> val_loss, double elapsed_seconds) {
        last_step_ = step;
        last_loss_ = loss;
        elapsed_ = elapsed_seconds;
        if (val_loss) last_val_ = val_loss;
        const bool first = step == opt_.start_step + 1, last = step >= total_;
        if (terminal_) {
            if (last || !drawn_ || elapsed_seconds - last_draw_ >= opt_.redraw_seconds) {
                *out_ << '\r' << bar() << ' ' << line(false) << "\x1b[K" << std::flush;
                drawn_ = true;
                last_draw_ = elapsed_seconds;
            }
        } else if (first || last || step % opt_.every == 0 || val_loss) {
            *out_ << line(val_loss.has_value()) << '\n' << std::flush;
        }
    }

    /// A line of its own (e.g. "saved checkpoint"), above the bar on a terminal.
    void message(std::string_view text) {
        if (terminal_ && drawn_) *out_ << "\r\x1b[K";
        *out_ << text << '\n';
        if (terminal_ && drawn_) *out_ << bar() << ' ' << line(false) << "\x1b[K";
        *out_ << std::flush;
    }

    /// Ends the bar's line on a terminal (called by the destructor if needed).
    void finish() {
        if (terminal_ && drawn_ && !finished_) *out_ << '\n' << std::flush;
        finished_ = true;
    }

    /// Seconds since construction, as of the last update.
    double elapsed_seconds() const noexcept { return elapsed_; }
    /// Tokens per second over the steps since start_step, as of the last update.
    double tokens_per_second() const noexcept {
        return elapsed_ > 0 ? static_cast<double>(done() * tokens_per_step_) / elapsed_ : 0.0;
    }
    /// Seconds to the last step at the average pace so far (NaN before the first step).
    double eta_seconds() const noexcept {
        if (done() == 0) return std::nan("");
        return static_cast<double>(total_ - std::min(total_, last_step_)) * elapsed_ / static_cast<double>(done());
    }

    /// "step 100/5000 | loss 2.3456 | ..." for the last update; with_val shows the last validation loss.
    std::string line(bool with_val) const {
        char buf[64];
        std::string s = "step " + std::to_string(last_step_) + "/" + std::to_string(total_);
        std::snprintf(buf, sizeof buf, " | loss %.4f", last_loss_);
        s += buf;
        if ((with_val || terminal_) && last_val_) {
            std::snprintf(buf, sizeof buf, " | val %.4f", *last_val_);
            s += buf;
        }
        s += " | " + format_rate(tokens_per_second()) + " tok/s";
        s += " | " + format_duration(elapsed_) + " elapsed";
        s += " | eta " + format_duration(eta_seconds());
        return s;
    }

private:
    std::size_t done() const noexcept { return last_step_ > opt_.start_step ? last_step_ - opt_.start_step : 0; }

    /// "[=========>          ]  45%"
    std::string bar() const {
        const double frac = std::min(1.0, static_cast<double>(last_step_) / static_cast<double>(total_));
        const auto w = opt_.bar_width;
        const auto full = static_cast<std::size_t>(frac * static_cast<double>(w));
        std::string b = "[";
        b.append(full, '=');
        if (full < w) b += '>', b.append(w - full - 1, ' ');
        char pct[16];
        std::snprintf(pct, sizeof pct, "] %3.0f%%", 100 * frac);
        return b + pct;
    }

    std::ostream* out_;
    bool terminal_;
    std::size_t total_, tokens_per_step_;
    progress_options opt_;
    clock::time_point start_;
    std::size_t last_step_ = 0;
    double last_loss_ = 0, elapsed_ = 0, last_draw_ = 0;
    std::optional<double> last_val_;
    bool drawn_ = false, finished_ = false;
};

}  // namespace ctdl::train
