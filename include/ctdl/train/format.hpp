#pragma once
// Numbers, durations and rates as a training run prints them.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <string>

namespace ctdl::train {

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

}  // namespace ctdl::train
