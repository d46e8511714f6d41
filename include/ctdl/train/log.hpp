#pragma once
// What a training run tells the person running it: a progress line, a CSV log, a loss plot.
//
//   ctdl::train::progress bar{total_steps, B * T};              // on stderr; a redrawn bar on a terminal
//   ctdl::train::csv_log log{"run/log.csv"};                     // appends; writes the header once
//   for (std::size_t step = 1; step <= total_steps; ++step) {
//       double loss = ...;
//       bar.update(step, loss);                                  // or update(step, loss, val_loss)
//       log.row(step, loss, std::nullopt, lr, bar.tokens_per_second(), bar.elapsed_seconds());
//   }
//   bar.finish();
//   ctdl::train::write_loss_plot_svg("run/loss.svg", train_points, val_points, "GPT on stories");
//
// Steps count completed optimizer steps: update(1, ...) after the first one, update(total, ...)
// after the last.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <unistd.h>

#include "../core/error.hpp"
#include "../io/file_io.hpp"

namespace ctdl::train {

// ---------------------------------------------------------------- formatting

/// Shortest decimal text that reads back as the same double ("0.1", "2.5e-05", "nan").
inline std::string format_number(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// "42s", "4m05s", "1h02m", "3d04h"; "?" for a negative or non-finite duration.
inline std::string format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "?";
    const auto s = static_cast<unsigned long long>(std::llround(seconds));
    char buf[48];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%llus", s);
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%llum%02llus", s / 60, s % 60);
    else if (s < 86400)
        std::snprintf(buf, sizeof buf, "%lluh%02llum", s / 3600, s % 3600 / 60);
    else
        std::snprintf(buf, sizeof buf, "%llud%02lluh", s / 86400, s % 86400 / 3600);
    return buf;
}

/// "950", "12.3k", "1.25M": three significant digits with an SI prefix.
inline std::string format_rate(double per_second) {
    if (!std::isfinite(per_second) || per_second < 0) return "?";
    const char* prefix[] = {"", "k", "M", "G", "T"};
    std::size_t p = 0;
    while (per_second >= 999.5 && p + 1 < std::size(prefix)) per_second /= 1000, ++p;
    char buf[32];
    if (p == 0)
        std::snprintf(buf, sizeof buf, "%.0f", per_second);
    else
        std::snprintf(buf, sizeof buf, per_second < 9.995 ? "%.2f%s" : per_second < 99.95 ? "%.1f%s" : "%.0f%s",
                      per_second, prefix[p]);
    return buf;
}

// ---------------------------------------------------------------- progress

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

// ---------------------------------------------------------------- csv_log

/// A CSV file of the run, one row per call, flushed at once (a crash loses at most the row
/// being written):
///   step,train_loss,val_loss,lr,tokens_per_s,seconds
///   100,2.3456,,0.0003,12345.6,65.2
/// val_loss is empty when not measured. Numbers are written in the shortest form that reads
/// back exactly.
class csv_log {
public:
    static constexpr std::string_view header = "step,train_loss,val_loss,lr,tokens_per_s,seconds";

    enum class mode {
        append,    // keep an existing log with the same header (resuming); start one otherwise
        truncate,  // start a new log
    };

    /// Opens path. In append mode an existing non-empty file must start with the header
    /// (ctdl::error naming the file otherwise), and a last row cut off by a crash (no
    /// final newline) is dropped.
    explicit csv_log(std::filesystem::path path, mode m = mode::append) : path_(std::move(path)) {
        const std::string where = "csv_log: '" + path_.string() + "'";
        bool need_header = true;
        std::error_code ec;
        if (m == mode::append && std::filesystem::exists(path_, ec) && std::filesystem::file_size(path_, ec) > 0 && !ec) {
            const std::vector<std::byte> bytes = ctdl::detail::read_file(path_);
            const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
            const std::string_view first = text.substr(0, text.find('\n'));
            if (first != header)
                throw error(where + " exists and its first line is '" + std::string(first.substr(0, 80)) +
                            "'; expected the header '" + std::string(header) + "' (or open it with mode::truncate)");
            const std::size_t keep = text.rfind('\n') + 1;  // the header has one, so rfind succeeds
            if (keep < text.size()) {
                std::filesystem::resize_file(path_, keep, ec);
                if (ec) throw error(where + ": cannot drop its incomplete last row: " + ec.message());
            }
            need_header = false;
        }
        file_.reset(std::fopen(path_.c_str(), m == mode::append ? "ab" : "wb"));
        if (!file_) throw error(where + ": cannot open for writing: " + ctdl::detail::errno_message(errno));
        if (need_header) write(std::string(header) + "\n");
    }

    /// Appends one row and flushes it.
    void row(std::size_t step, double train_loss, std::optional<double> val_loss, double lr, double tokens_per_s,
             double seconds) {
        std::string r = std::to_string(step) + "," + format_number(train_loss) + ",";
        if (val_loss) r += format_number(*val_loss);
        r += "," + format_number(lr) + "," + format_number(tokens_per_s) + "," + format_number(seconds) + "\n";
        write(r);
    }

    const std::filesystem::path& path() const noexcept { return path_; }

private:
    void write(const std::string& s) {
        if (std::fwrite(s.data(), 1, s.size(), file_.get()) != s.size() || std::fflush(file_.get()) != 0)
            throw error("csv_log: writing '" + path_.string() + "' failed: " + ctdl::detail::errno_message(errno));
    }

    struct closer {
        void operator()(std::FILE* f) const noexcept { std::fclose(f); }
    };
    std::filesystem::path path_;
    std::unique_ptr<std::FILE, closer> file_;
};

// ---------------------------------------------------------------- loss plot (SVG)

/// One point of a loss curve.
struct loss_point {
    double step;
    double loss;
};

namespace detail {

/// Tick positions for [lo, hi]: multiples of a step from {1, 2, 5} × 10^k chosen so that
/// there are about `target` of them; returns {first, step, count} covering [lo, hi] with
/// the first tick <= lo and the last >= hi.
struct tick_scale {
    double first, step;
    std::size_t count;
    double last() const noexcept { return first + step * static_cast<double>(count - 1); }
};

inline tick_scale nice_ticks(double lo, double hi, double target, double min_step = 0) {
    const double raw = (hi - lo) / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double r = raw / mag;
    const double step = std::max(min_step, (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag);
    const double first = std::floor(lo / step + 1e-9) * step;
    const double last = std::ceil(hi / step - 1e-9) * step;
    return {first, step, static_cast<std::size_t>(std::llround((last - first) / step)) + 1};
}

/// A tick label with as many decimals as the step needs ("0.25", "1000", "-0.5").
inline std::string tick_label(double v, double step) {
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    if (std::abs(v) < step * 1e-6) v = 0;  // no "-0"
    char buf[48];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

inline std::string xml_escape(std::string_view s) {
    std::string o;
    for (char c : s) {
        switch (c) {
            case '&': o += "&amp;"; break;
            case '<': o += "&lt;"; break;
            case '>': o += "&gt;"; break;
            case '"': o += "&quot;"; break;
            case '\'': o += "&apos;"; break;
            default: o += c;
        }
    }
    return o;
}

inline std::string fmt(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v);
    return buf;
}

}  // namespace detail

/// The SVG text of a loss plot: training and validation curves against step, ticks and
/// grid on both axes, a legend and a title. ctdl::error if both curves are empty or a
/// point is not finite (naming the curve and the point).
inline std::string loss_plot_svg(std::span<const loss_point> train, std::span<const loss_point> val,
                                 std::string_view title = "loss") {
    if (train.empty() && val.empty()) throw error("write_loss_plot_svg: both curves are empty; nothing to plot");
    const auto check = [](std::span<const loss_point> pts, const char* name) {
        for (std::size_t i = 0; i < pts.size(); ++i)
            if (!std::isfinite(pts[i].step) || !std::isfinite(pts[i].loss))
                throw error(std::string("write_loss_plot_svg: ") + name + " point " + std::to_string(i) + " is (step " +
                            format_number(pts[i].step) + ", loss " + format_number(pts[i].loss) +
                            "); expected finite numbers");
    };
    check(train, "training");
    check(val, "validation");

    // Data ranges over both curves.
    constexpr double inf = std::numeric_limits<double>::infinity();
    double x0 = inf, x1 = -inf, y0 = inf, y1 = -inf;
    for (auto pts : {train, val})
        for (const loss_point& p : pts) {
            x0 = std::min(x0, p.step), x1 = std::max(x1, p.step);
            y0 = std::min(y0, p.loss), y1 = std::max(y1, p.loss);
        }
    if (x1 - x0 < 1e-12 * std::max(1.0, std::abs(x0))) {  // one step: a window of ±1 around it, not below 0
        const double c = x0;
        x0 = c >= 0 ? std::max(0.0, c - 1) : c - 1;
        x1 = c + 1;
    }
    if (y1 - y0 < 1e-12 * std::max(1.0, std::abs(y0))) {
        const double pad = std::max(0.5, std::abs(y0) * 0.1);
        y0 -= pad, y1 += pad;
    } else {
        const double pad = 0.04 * (y1 - y0);
        y0 -= pad, y1 += pad;
    }
    bool integer_steps = true;  // then no tick between two steps
    for (auto pts : {train, val})
        for (const loss_point& p : pts) integer_steps = integer_steps && p.step == std::floor(p.step);
    const detail::tick_scale xt = detail::nice_ticks(x0, x1, 8, integer_steps ? 1.0 : 0.0);
    const detail::tick_scale yt = detail::nice_ticks(y0, y1, 6);
    const double ax0 = xt.first, ax1 = xt.last(), ay0 = yt.first, ay1 = yt.last();

    // Canvas: W × H, plot area [L, W - R] × [T, H - B].
    constexpr double W = 800, H = 500, L = 72, R = 24, T = 52, B = 58;
    const double pw = W - L - R, ph = H - T - B;
    const auto sx = [&](double x) { return L + (x - ax0) / (ax1 - ax0) * pw; };
    const auto sy = [&](double y) { return T + ph - (y - ay0) / (ay1 - ay0) * ph; };
    using detail::fmt;

    std::string s;
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"500\" viewBox=\"0 0 800 500\" "
         "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n";
    s += "<rect width=\"800\" height=\"500\" fill=\"#ffffff\"/>\n";
    s += "<text x=\"" + fmt(W / 2) + "\" y=\"32\" text-anchor=\"middle\" font-size=\"19\" font-weight=\"bold\" "
         "fill=\"#222222\">" + detail::xml_escape(title) + "</text>\n";

    // Grid and ticks.
    s += "<g stroke=\"#e6e6e6\" stroke-width=\"1\">\n";
    for (std::size_t i = 0; i < xt.count; ++i) {
        const double x = sx(xt.first + xt.step * static_cast<double>(i));
        s += "<line x1=\"" + fmt(x) + "\" y1=\"" + fmt(T) + "\" x2=\"" + fmt(x) + "\" y2=\"" + fmt(T + ph) + "\"/>\n";
    }
    for (std::size_t i = 0; i < yt.count; ++i) {
        const double y = sy(yt.first + yt.step * static_cast<double>(i));
        s += "<line x1=\"" + fmt(L) + "\" y1=\"" + fmt(y) + "\" x2=\"" + fmt(L + pw) + "\" y2=\"" + fmt(y) + "\"/>\n";
    }
    s += "</g>\n";
    s += "<rect x=\"" + fmt(L) + "\" y=\"" + fmt(T) + "\" width=\"" + fmt(pw) + "\" height=\"" + fmt(ph) +
         "\" fill=\"none\" stroke=\"#444444\" stroke-width=\"1\"/>\n";
    s += "<g font-size=\"12\" fill=\"#333333\">\n";
    for (std::size_t i = 0; i < xt.count; ++i) {
        const double v = xt.first + xt.step * static_cast<double>(i), x = sx(v);
        s += "<line x1=\"" + fmt(x) + "\" y1=\"" + fmt(T + ph) + "\" x2=\"" + fmt(x) + "\" y2=\"" + fmt(T + ph + 5) +
             "\" stroke=\"#444444\"/>\n";
        s += "<text x=\"" + fmt(x) + "\" y=\"" + fmt(T + ph + 19) + "\" text-anchor=\"middle\">" +
             detail::tick_label(v, xt.step) + "</text>\n";
    }
    for (std::size_t i = 0; i < yt.count; ++i) {
        const double v = yt.first + yt.step * static_cast<double>(i), y = sy(v);
        s += "<line x1=\"" + fmt(L - 5) + "\" y1=\"" + fmt(y) + "\" x2=\"" + fmt(L) + "\" y2=\"" + fmt(y) +
             "\" stroke=\"#444444\"/>\n";
        s += "<text x=\"" + fmt(L - 8) + "\" y=\"" + fmt(y + 4) + "\" text-anchor=\"end\">" +
             detail::tick_label(v, yt.step) + "</text>\n";
    }
    s += "</g>\n";
    s += "<text x=\"" + fmt(L + pw / 2) + "\" y=\"" + fmt(H - 14) +
         "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\">step</text>\n";
    s += "<text x=\"20\" y=\"" + fmt(T + ph / 2) + "\" text-anchor=\"middle\" font-size=\"14\" fill=\"#222222\" "
         "transform=\"rotate(-90 20 " + fmt(T + ph / 2) + ")\">loss</text>\n";

    // Curves: a polyline each, with dots where points are few enough to see.
    constexpr const char* train_colour = "#1f77b4";
    constexpr const char* val_colour = "#d62728";
    const auto curve = [&](std::span<const loss_point> pts, const char* colour, const char* cls, double width,
                           std::size_t dots_up_to) {
        if (pts.empty()) return;
        s += std::string("<polyline class=\"") + cls + "\" fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"" +
             fmt(width) + "\" stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"";
        for (std::size_t i = 0; i < pts.size(); ++i) {
            if (i) s += ' ';
            s += fmt(sx(pts[i].step));
            s += ',';
            s += fmt(sy(pts[i].loss));
        }
        s += "\"/>\n";
        if (pts.size() <= dots_up_to) {
            s += std::string("<g fill=\"") + colour + "\">\n";
            for (const loss_point& p : pts) s += "<circle cx=\"" + fmt(sx(p.step)) + "\" cy=\"" + fmt(sy(p.loss)) + "\" r=\"3\"/>\n";
            s += "</g>\n";
        }
    };
    curve(train, train_colour, "train", train.size() > 300 ? 1.1 : 1.6, 1);
    curve(val, val_colour, "validation", 2.2, 60);

    // Legend, top right inside the plot.
    const std::size_t entries = (train.empty() ? 0 : 1) + (val.empty() ? 0 : 1);
    const double lw = 128, lh = 10 + 22 * static_cast<double>(entries), lx = L + pw - lw - 12, ly = T + 12;
    s += "<g font-size=\"13\" fill=\"#222222\">\n";
    s += "<rect x=\"" + fmt(lx) + "\" y=\"" + fmt(ly) + "\" width=\"" + fmt(lw) + "\" height=\"" + fmt(lh) +
         "\" rx=\"4\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#cccccc\"/>\n";
    double ey = ly + 21;
    const auto entry = [&](const char* colour, const char* label) {
        s += "<line x1=\"" + fmt(lx + 12) + "\" y1=\"" + fmt(ey - 4) + "\" x2=\"" + fmt(lx + 40) + "\" y2=\"" +
             fmt(ey - 4) + "\" stroke=\"" + colour + "\" stroke-width=\"2.5\"/>\n";
        s += "<text x=\"" + fmt(lx + 48) + "\" y=\"" + fmt(ey) + "\">" + label + "</text>\n";
        ey += 22;
    };
    if (!train.empty()) entry(train_colour, "train");
    if (!val.empty()) entry(val_colour, "validation");
    s += "</g>\n</svg>\n";
    return s;
}

/// Writes loss_plot_svg(train, val, title) to path atomically (a temporary file in the
/// same directory, then a rename): readers never see half a plot.
inline void write_loss_plot_svg(const std::filesystem::path& path, std::span<const loss_point> train,
                                std::span<const loss_point> val, std::string_view title = "loss") {
    const std::string svg = loss_plot_svg(train, val, title);
    ctdl::detail::atomic_write(path, [&](auto&& write) { write(svg.data(), svg.size()); });
}

}  // namespace ctdl::train
