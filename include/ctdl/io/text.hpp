#pragma once
// Text helpers shared by the readers of files (safetensors headers, checkpoint metadata).
//
//   std::optional<std::uint64_t> n = ctdl::parse_number<std::uint64_t>("300");   // 300
//   std::optional<float> lr = ctdl::parse_number<float>("0.001");                 // 0.001f
//   ctdl::parse_number<std::uint64_t>("18446744073709551616");                   // nullopt (out of range)
//   ctdl::parse_number<float>("1e300");                                          // nullopt (not a float)
//   std::string q = ctdl::detail::quote(untrusted);   // "\"...\"", at most ~80 characters of it
//   std::string c = ctdl::detail::clip(untrusted);    // the same without the quotes
//
// parse_number accepts exactly the text that ctdl writes for a number, and only when the
// number fits the type: no leading or trailing spaces, no '+', no hexadecimal, no
// infinities or NaNs, no integer with leading zeros or (for an unsigned type) a sign, no
// floating-point value outside the type's range or one that is not zero but would round
// to zero. Everything else is nullopt; it never throws and never has undefined behaviour.
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace ctdl {

/// The number that text spells (see the header comment for what is accepted), or nullopt.
template <class T>
    requires(std::integral<T> && !std::same_as<T, bool>) || std::same_as<T, float> || std::same_as<T, double>
std::optional<T> parse_number(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    const char* const first = text.data();
    const char* const last = first + text.size();
    T value{};
    if constexpr (std::integral<T>) {
        const std::string_view digits = text[0] == '-' ? text.substr(1) : text;
        if (digits.empty() || digits[0] < '0' || digits[0] > '9') return std::nullopt;  // "-", "--1", "-+1"
        if (digits.size() > 1 && digits[0] == '0') return std::nullopt;                 // "007"
        if (text[0] == '-' && digits == "0") return std::nullopt;                       // "-0"
        const auto [end, ec] = std::from_chars(first, last, value, 10);
        if (ec != std::errc{} || end != last) return std::nullopt;
        return value;
    } else {
        // from_chars accepts "inf", "nan" and forms without digits before the point; ctdl
        // writes none of those, so only [-]digits[.digits][(e|E)[+|-]digits] passes.
        std::size_t i = text[0] == '-' ? 1 : 0;
        const auto digit = [&](std::size_t k) { return k < text.size() && text[k] >= '0' && text[k] <= '9'; };
        bool nonzero = false;
        if (!digit(i)) return std::nullopt;
        for (; digit(i); ++i) nonzero |= text[i] != '0';
        if (i < text.size() && text[i] == '.') {
            if (!digit(++i)) return std::nullopt;
            for (; digit(i); ++i) nonzero |= text[i] != '0';
        }
        if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
            ++i;
            if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
            if (!digit(i)) return std::nullopt;
            while (digit(i)) ++i;
        }
        if (i != text.size()) return std::nullopt;
        const auto [end, ec] = std::from_chars(first, last, value, std::chars_format::general);
        if (ec != std::errc{} || end != last || !std::isfinite(value)) return std::nullopt;
        if (value == 0 && nonzero) return std::nullopt;  // underflow: "1e-300" is not 0
        return value;
    }
}

namespace detail {

/// s for an error message: at most max bytes of it (cut at a UTF-8 character boundary,
/// then "..."), control characters as '?'.
inline std::string clip(std::string_view s, std::size_t max = 80) {
    std::size_t n = s.size();
    if (n > max) {
        n = max;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    }
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(s[i]) < 0x20 ? '?' : s[i]);
    if (n < s.size()) out += "...";
    return out;
}

/// s in double quotes for an error message: at most max bytes of it (cut at a UTF-8
/// character boundary, then "..." and the full length), control characters as '?'. Keeps
/// messages short whatever a file holds.
inline std::string quote(std::string_view s, std::size_t max = 80) {
    std::string out = "\"";
    std::size_t n = s.size();
    if (n > max) {
        n = max;
        while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a character
    }
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<unsigned char>(s[i]) < 0x20 ? '?' : s[i]);
    out += '"';
    if (n < s.size()) out += "... (" + std::to_string(s.size()) + " bytes)";
    return out;
}

}  // namespace detail
}  // namespace ctdl
