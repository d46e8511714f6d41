#pragma once
// The loss curves of a training run as an SVG file.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../io/file_io.hpp"
#include "format.hpp"

namespace ctdl::train {

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
