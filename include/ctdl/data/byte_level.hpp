#pragma once
// The byte-level parts of GPT-2's tokenizer, as the Hugging Face `tokenizers` library has them:
//
//   ctdl::data::byte_level::byte_to_char(0x20)        // U+0120 'Ġ': how a byte is written in a token
//   ctdl::data::byte_level::char_to_byte(U'Ġ')        // 0x20, or -1 for a character that stands for no byte
//   ctdl::data::byte_level::split(text, [](std::string_view piece) { ... });   // GPT-2's pre-tokenizer
//   std::string s = ctdl::data::byte_level::utf8_lossy(bytes);                  // ill-formed runs -> U+FFFD
//
// byte_to_char: the printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand
// for themselves; the other 68 bytes, in increasing order, for U+0100, U+0101, ...
//
// split cuts valid UTF-8 text into the pieces that GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches one after the other (the alternatives tried in order at each position, as a
// backtracking engine does), with \p{L}, \p{N} and \s from bpe_unicode.hpp. The pieces
// cover the text: every character falls in one.
//
// utf8_lossy replaces each maximal ill-formed subsequence by one U+FFFD, as Rust's
// String::from_utf8_lossy (and so `tokenizers`' decoder) does.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bpe_unicode.hpp"
#include "utf8.hpp"

namespace ctdl::data::byte_level {

/// True for the bytes that stand for themselves in byte_to_char.
constexpr bool printable_byte(unsigned b) noexcept {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

namespace detail {
inline constexpr std::array<char32_t, 256> byte_chars = [] {
    std::array<char32_t, 256> t{};
    char32_t next = 0x100;
    for (unsigned b = 0; b < 256; ++b) t[b] = printable_byte(b) ? char32_t(b) : next++;
    return t;
}();
}  // namespace detail

/// The character that byte b is written as in a byte-level token.
constexpr char32_t byte_to_char(std::uint8_t b) noexcept { return detail::byte_chars[b]; }

/// The byte that character c stands for, or -1 if it stands for none.
constexpr int char_to_byte(char32_t c) noexcept {
    if (c < 0x100) return printable_byte(static_cast<unsigned>(c)) ? static_cast<int>(c) : -1;
    if (c >= 0x100 + 68) return -1;
    for (unsigned b = 0; b < 256; ++b)
        if (detail::byte_chars[b] == c) return static_cast<int>(b);
    return -1;
}

/// The bytes of s written as byte-level characters (UTF-8): "a b" -> "aĠb".
inline std::string encode_bytes(std::string_view s) {
    std::string out;
    out.reserve(s.size() * 2);
    for (const char ch : s) utf8_append(out, byte_to_char(static_cast<std::uint8_t>(ch)));
    return out;
}

/// The bytes a token stands for if every character of it (valid UTF-8) stands for a byte;
/// otherwise false (out is then unspecified).
inline bool decode_chars(std::string_view token, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < token.size();) {
        const utf8_step st = utf8_next(token, i);
        if (st.length == 0) return false;
        const int b = char_to_byte(st.code_point);
        if (b < 0) return false;
        out.push_back(static_cast<char>(static_cast<unsigned char>(b)));
        i += st.length;
    }
    return true;
}

using unicode::char_class;

/// The class of code point cp for GPT-2's pattern.
inline char_class classify(char32_t cp) noexcept {
    static constexpr std::array<char_class, 128> ascii = [] {
        std::array<char_class, 128> t{};
        for (unsigned c = 0; c < 128; ++c) {
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) t[c] = char_class::letter;
            else if (c >= '0' && c <= '9') t[c] = char_class::number;
            else if (c == ' ' || (c >= 0x09 && c <= 0x0D)) t[c] = char_class::space;
            else t[c] = char_class::other;
        }
        return t;
    }();
    if (cp < 128) return ascii[cp];
    const auto& r = unicode::class_ranges;
    const auto it = std::upper_bound(r.begin(), r.end(), cp, [](char32_t c, const unicode::class_range& x) { return c < x.first; });
    if (it == r.begin()) return char_class::other;
    const auto& hit = *(it - 1);
    return cp <= hit.last ? hit.cls : char_class::other;
}

/// Calls piece(std::string_view) for each piece of text (valid UTF-8) that GPT-2's pattern
/// matches, in order (see the header comment). Never calls it with an empty piece.
template <class OnPiece>
void split(std::string_view text, OnPiece&& piece) {
    const std::size_t n = text.size();
    // The class and length of the character at byte i < n.
    const auto at = [&](std::size_t i, std::size_t& len) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {
            len = 1;
            return classify(b);
        }
        const utf8_step st = utf8_next(text, i);
        len = st.length == 0 ? 1 : st.length;  // invalid bytes (callers check first) count as other
        return st.length == 0 ? char_class::other : classify(st.code_point);
    };
    // The end of the run of characters of class c that starts at i.
    const auto run = [&](std::size_t i, char_class c) {
        std::size_t len = 0;
        while (i < n && at(i, len) == c) i += len;
        return i;
    };
    std::size_t i = 0;
    while (i < n) {
        std::size_t end = 0;
        if (text[i] == '\'' && i + 1 < n) {  // 's 't 're 've 'm 'll 'd
            const char a = text[i + 1];
            const char b = i + 2 < n ? text[i + 2] : '\0';
            if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
            else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
        }
        if (end == 0) {
            std::size_t len = 0;
            const std::size_t j = text[i] == ' ' && i + 1 < n ? i + 1 : i;  // " ?" then a letter, number or other run
            const char_class cj = at(j, len);
            if (cj != char_class::space) {
                end = run(j, cj);
            } else {
                // A whitespace run: all of it at the end of the text, else all but its last
                // character (\s+(?!\S)), else (a single character before a non-space) that one.
                std::size_t last = i, k = i;
                while (k < n && at(k, len) == char_class::space) last = k, k += len;
                end = k == n || last == i ? k : last;
            }
        }
        piece(text.substr(i, end - i));
        i = end;
    }
}

/// s with each maximal ill-formed UTF-8 subsequence replaced by U+FFFD (see the header comment).
inline std::string utf8_lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    for (std::size_t i = 0; i < s.size();) {
        const unsigned char b0 = byte(i);
        if (b0 < 0x80) {
            out.push_back(static_cast<char>(b0));
            ++i;
            continue;
        }
        std::size_t len = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
        if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
        else if (b0 == 0xE0) len = 3, lo = 0xA0;
        else if (b0 == 0xED) len = 3, hi = 0x9F;
        else if (b0 >= 0xE1 && b0 <= 0xEF) len = 3;
        else if (b0 == 0xF0) len = 4, lo = 0x90;
        else if (b0 >= 0xF1 && b0 <= 0xF3) len = 4;
        else if (b0 == 0xF4) len = 4, hi = 0x8F;
        std::size_t k = 1;  // bytes of a well-formed prefix seen so far
        if (len > 0) {
            while (k < len && i + k < s.size()) {
                const unsigned char b = byte(i + k);
                const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
                if (b < l || b > h) break;
                ++k;
            }
        }
        if (len > 0 && k == len) {
            out.append(s.substr(i, len));
        } else {
            out += "\xEF\xBF\xBD";  // U+FFFD
        }
        i += k;
    }
    return out;
}

}  // namespace ctdl::data::byte_level
