#pragma once
// Strict UTF-8 (RFC 3629): decoding to code points, encoding back, and validation that
// names the byte offset of the first bad byte.
//
//   std::vector<char32_t> cps = ctdl::data::utf8_decode(text);   // throws ctdl::error
//   std::string s;  ctdl::data::utf8_append(s, U'é');             // "\xC3\xA9"
//
// A well-formed sequence is one of
//   1 byte   0xxxxxxx                              U+0000  .. U+007F
//   2 bytes  110xxxxx 10xxxxxx                     U+0080  .. U+07FF
//   3 bytes  1110xxxx 10xxxxxx 10xxxxxx            U+0800  .. U+FFFF   except U+D800 .. U+DFFF
//   4 bytes  11110xxx 10xxxxxx 10xxxxxx 10xxxxxx   U+10000 .. U+10FFFF
// Everything else is refused: stray continuation bytes, truncated sequences, overlong
// forms (a code point in more bytes than it needs), UTF-16 surrogates, values past U+10FFFF.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"

namespace ctdl::data {

/// One decoded sequence: the code point and its length in bytes, or length 0 with a
/// reason when the bytes at that offset are not well-formed UTF-8.
struct utf8_step {
    char32_t code_point = 0;
    std::size_t length = 0;  // 0: invalid
    const char* reason = nullptr;
};

/// Decodes the sequence that starts at s[i] (i < s.size()).
constexpr utf8_step utf8_next(std::string_view s, std::size_t i) noexcept {
    const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
    const std::uint8_t b0 = byte(i);
    if (b0 < 0x80) return {b0, 1, nullptr};
    std::size_t n;
    char32_t cp;
    char32_t min;
    if ((b0 & 0xE0) == 0xC0) {
        n = 2, cp = b0 & 0x1Fu, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 3, cp = b0 & 0x0Fu, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 4, cp = b0 & 0x07u, min = 0x10000;
    } else {
        return {0, 0, (b0 & 0xC0) == 0x80 ? "a continuation byte where a character should start" : "a byte that never occurs in UTF-8"};
    }
    for (std::size_t k = 1; k < n; ++k) {
        if (i + k >= s.size()) return {0, 0, "a sequence cut off by the end of the text"};
        const std::uint8_t b = byte(i + k);
        if ((b & 0xC0) != 0x80) return {0, 0, "a sequence missing a continuation byte"};
        cp = (cp << 6) | (b & 0x3Fu);
    }
    if (cp < min) return {0, 0, "an overlong encoding"};
    if (cp >= 0xD800 && cp <= 0xDFFF) return {0, 0, "an encoded UTF-16 surrogate"};
    if (cp > 0x10FFFF) return {0, 0, "a code point past U+10FFFF"};
    return {cp, n, nullptr};
}

/// The byte offset of the first ill-formed sequence, or std::string_view::npos if s is valid UTF-8.
constexpr std::size_t utf8_invalid_offset(std::string_view s) noexcept {
    for (std::size_t i = 0; i < s.size();) {
        const utf8_step st = utf8_next(s, i);
        if (st.length == 0) return i;
        i += st.length;
    }
    return std::string_view::npos;
}

/// "U+00E9": the conventional name of a code point.
inline std::string code_point_name(char32_t cp) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(cp));
    return buf;
}

/// Appends the UTF-8 encoding of cp (a Unicode scalar value) to out.
inline void utf8_append(std::string& out, char32_t cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        throw error("utf8_append: " + code_point_name(cp) + " is not a Unicode scalar value");
    const auto put = [&](unsigned v) { out.push_back(static_cast<char>(static_cast<unsigned char>(v))); };
    if (cp < 0x80) {
        put(cp);
    } else if (cp < 0x800) {
        put(0xC0 | (cp >> 6)), put(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        put(0xE0 | (cp >> 12)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    } else {
        put(0xF0 | (cp >> 18)), put(0x80 | ((cp >> 12) & 0x3F)), put(0x80 | ((cp >> 6) & 0x3F)), put(0x80 | (cp & 0x3F));
    }
}

/// "'é' (U+00E9)" for printable characters, "U+000A" for control characters: how error
/// messages name a character.
inline std::string describe_code_point(char32_t cp) {
    const bool control = cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF);
    if (control) return code_point_name(cp);
    std::string s = "'";
    utf8_append(s, cp);
    return s + "' (" + code_point_name(cp) + ")";
}

/// Throws ctdl::error "<what>: invalid UTF-8 at byte offset N (0xXX): <reason>" unless s is valid.
inline void utf8_check(std::string_view s, std::string_view what) {
    const std::size_t i = utf8_invalid_offset(s);
    if (i == std::string_view::npos) return;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<std::uint8_t>(s[i])));
    throw error(std::string(what) + ": invalid UTF-8 at byte offset " + std::to_string(i) + " (byte " + hex +
                "): " + utf8_next(s, i).reason);
}

/// The code points of s; ctdl::error (see utf8_check) if s is not valid UTF-8.
inline std::vector<char32_t> utf8_decode(std::string_view s, std::string_view what = "text") {
    std::vector<char32_t> out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const utf8_step st = utf8_next(s, i);
        if (st.length == 0) utf8_check(s, what);  // throws with the offset
        out.push_back(st.code_point);
        i += st.length;
    }
    return out;
}

}  // namespace ctdl::data
