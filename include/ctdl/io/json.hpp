#pragma once
// A small, strict JSON reader and writer (RFC 8259), enough for safetensors headers.
//
//   ctdl::json::value v = ctdl::json::parse(R"({"a": [1, 2]})");   // throws json::parse_error
//   const ctdl::json::value* a = v.find("a");                        // nullptr if absent
//   std::optional<std::uint64_t> n = a->items[0].as_u64();           // 1
//   std::string out; ctdl::json::write_string(out, "tab\there");     // "\"tab\\there\""
//
// Strict means: no comments, no trailing commas, no leading zeros, no unescaped control
// characters, only valid UTF-8 (no overlong forms, no surrogates), no lone surrogate
// escapes, no duplicate keys in an object, nesting at most max_depth deep, and nothing
// but whitespace after the value. Every input, however malformed, either parses or
// throws parse_error; none reads out of bounds or overflows.
//
// A parsed value costs about 100 bytes, so text of many small values (an array of a
// million 1s) costs about 50 times its size. For untrusted text, bound that with
// json::limits (elements per array, members per object, bytes per string, depth): they are
// checked while parsing, before the memory is spent. for_each_member reads a top-level
// object one member at a time, so that only one member's values exist at once:
//
//   ctdl::json::for_each_member(text, {.max_members = 1000, .max_key_bytes = 256},
//       [](const std::string& key) { return ctdl::json::limits{.max_depth = 2, .max_array_items = 16}; },
//       [](std::string key, ctdl::json::value v) { /* use v, then it is gone */ });
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "../data/utf8.hpp"
#include "text.hpp"

namespace ctdl::json {

enum class kind : unsigned char { null, boolean, number, string, array, object };

/// A parsed JSON value. Objects keep their keys in document order: keys[i] names items[i].
struct value {
    json::kind kind = json::kind::null;
    bool boolean = false;
    std::string text;              ///< a string's contents (UTF-8), or a number's literal text
    std::vector<value> items;      ///< array elements, or object values
    std::vector<std::string> keys; ///< object keys (same length as items)
    std::size_t offset = 0;        ///< byte offset of the value in the parsed text

    bool is_object() const { return kind == json::kind::object; }
    bool is_array() const { return kind == json::kind::array; }
    bool is_string() const { return kind == json::kind::string; }
    bool is_number() const { return kind == json::kind::number; }

    /// The member named key of an object, or nullptr (also when this is not an object).
    const value* find(std::string_view key) const {
        if (!is_object()) return nullptr;
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == key) return &items[i];
        return nullptr;
    }

    /// A number written as a plain non-negative integer ("0", "42"; not "-1", "1.0",
    /// "1e3") that fits in 64 bits; otherwise nullopt.
    std::optional<std::uint64_t> as_u64() const {
        if (!is_number()) return std::nullopt;
        return parse_number<std::uint64_t>(text);
    }
};

/// Thrown for malformed text; what() reads "malformed JSON at byte P: reason".
class parse_error : public ctdl::error {
public:
    parse_error(std::size_t position, const std::string& reason)
        : ctdl::error("malformed JSON at byte " + std::to_string(position) + ": " + reason),
          position_(position), reason_(reason) {}
    std::size_t position() const { return position_; }
    const std::string& reason() const { return reason_; }

private:
    std::size_t position_;
    std::string reason_;
};

inline constexpr int max_depth = 64;

/// Bounds on what a document may hold, checked as it is parsed (parse_error when exceeded).
struct limits {
    int max_depth = json::max_depth;                                       ///< nesting of arrays and objects
    std::size_t max_array_items = static_cast<std::size_t>(-1);            ///< elements of one array
    std::size_t max_object_members = static_cast<std::size_t>(-1);         ///< members of one object
    std::size_t max_string_bytes = static_cast<std::size_t>(-1);           ///< one string value, decoded
    std::size_t max_key_bytes = static_cast<std::size_t>(-1);              ///< one object key, decoded
};

/// Bounds on the top-level object that for_each_member reads.
struct member_limits {
    std::size_t max_members = static_cast<std::size_t>(-1);
    std::size_t max_key_bytes = static_cast<std::size_t>(-1);
};

namespace detail {

/// Length of the valid UTF-8 sequence starting at s[i] (1..4), or 0 if it is invalid or
/// cut off by the end of s.
inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char b0 = byte(i);
    if (b0 < 0x80) return 1;
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 == 0xE0) len = 3, lo = 0xA0;            // no overlong 3-byte forms
    else if (b0 == 0xED) len = 3, hi = 0x9F;            // no UTF-16 surrogates
    else if (b0 >= 0xE1 && b0 <= 0xEF) len = 3;
    else if (b0 == 0xF0) len = 4, lo = 0x90;            // no overlong 4-byte forms
    else if (b0 >= 0xF1 && b0 <= 0xF3) len = 4;
    else if (b0 == 0xF4) len = 4, hi = 0x8F;            // nothing above U+10FFFF
    else return 0;
    if (s.size() - i < len) return 0;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < len; ++k)
        if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
    return len;
}

/// Keys too long for a message are cut (see ctdl::detail::quote).
inline std::string quoted_key(std::string_view key) { return ctdl::detail::quote(key, 80); }

class parser {
public:
    explicit parser(std::string_view text, const limits& lim = {}) : s_(text), lim_(lim) {}

    value parse_document() {
        skip_space();
        value v = parse_value(0);
        skip_space();
        if (pos_ != s_.size()) fail("unexpected characters after the JSON value");
        return v;
    }

    template <class LimitsFor, class OnMember>
    void for_each_member(const member_limits& root, LimitsFor&& limits_for, OnMember&& on_member) {
        skip_space();
        if (at_end()) fail("unexpected end of text, expected a value");
        if (peek() != '{') fail("expected a JSON object");
        std::vector<std::string> keys;
        parse_members(keys, root.max_members, root.max_key_bytes, [&](const std::string& key) {
            lim_ = limits_for(key);
            value v = parse_value(0);
            on_member(std::string(key), std::move(v));
        });
        skip_space();
        if (pos_ != s_.size()) fail("unexpected characters after the JSON value");
    }

private:
    std::string_view s_;
    limits lim_;
    std::size_t pos_ = 0;

    [[noreturn]] void fail(const std::string& reason) const { throw parse_error(pos_, reason); }
    [[noreturn]] void fail_at(std::size_t at, const std::string& reason) const {
        throw parse_error(at, reason);
    }

    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return s_[pos_]; }  // only when !at_end()

    void skip_space() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++pos_;
    }

    void expect(char c, const char* what) {
        if (at_end()) fail(std::string("unexpected end of text, expected ") + what);
        if (peek() != c) fail(std::string("expected ") + what);
        ++pos_;
    }

    value parse_value(int depth) {
        if (at_end()) fail("unexpected end of text, expected a value");
        value v;
        v.offset = pos_;
        switch (peek()) {
            case '{': parse_object(v, depth + 1); break;
            case '[': parse_array(v, depth + 1); break;
            case '"':
                v.kind = kind::string;
                v.text = parse_string(lim_.max_string_bytes, "a string");
                break;
            case 't': parse_literal("true"), v.kind = kind::boolean, v.boolean = true; break;
            case 'f': parse_literal("false"), v.kind = kind::boolean; break;
            case 'n': parse_literal("null"); break;
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
                    v.kind = kind::number;
                    v.text = parse_number();
                } else {
                    fail("expected a value");
                }
        }
        return v;
    }

    void parse_literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) fail("invalid literal (expected true, false or null)");
        pos_ += word.size();
    }

    void check_depth(int depth) const {
        if (depth > lim_.max_depth) fail("nesting is deeper than " + std::to_string(lim_.max_depth) + " levels");
    }

    void parse_object(value& v, int depth) {
        check_depth(depth);
        v.kind = kind::object;
        parse_members(v.keys, lim_.max_object_members, lim_.max_key_bytes,
                      [&](const std::string&) { v.items.push_back(parse_value(depth)); });
    }

    /// The members of the object at '{': each key into keys, then on_value(key) parses its
    /// value; refuses more than max_members members and duplicate keys.
    template <class ParseValue>
    void parse_members(std::vector<std::string>& keys, std::size_t max_members, std::size_t max_key_bytes,
                       ParseValue&& on_value) {
        std::vector<std::size_t> key_offsets;
        ++pos_;  // '{'
        skip_space();
        if (!at_end() && peek() == '}') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_space();
            if (at_end() || peek() != '"') fail(at_end() ? "unexpected end of text, expected an object key" : "expected a string as object key");
            if (keys.size() >= max_members) fail("an object has more than " + std::to_string(max_members) + " members");
            key_offsets.push_back(pos_);
            keys.push_back(parse_string(max_key_bytes, "an object key"));
            skip_space();
            expect(':', "':' after an object key");
            skip_space();
            on_value(static_cast<const std::string&>(keys.back()));
            skip_space();
            if (at_end()) fail("unexpected end of text, expected ',' or '}'");
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == '}') {
                ++pos_;
                break;
            }
            fail("expected ',' or '}' in an object");
        }
        reject_duplicate_keys(keys, key_offsets);
    }

    // Sorting an index keeps this O(n log n) even for adversarial headers with many keys.
    void reject_duplicate_keys(const std::vector<std::string>& keys, const std::vector<std::size_t>& offsets) const {
        std::vector<std::size_t> order(keys.size());
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
        });
        for (std::size_t i = 1; i < order.size(); ++i)
            if (keys[order[i]] == keys[order[i - 1]])
                fail_at(offsets[order[i]], "duplicate key " + quoted_key(keys[order[i]]) + " in an object");
    }

    void parse_array(value& v, int depth) {
        check_depth(depth);
        v.kind = kind::array;
        ++pos_;  // '['
        skip_space();
        if (!at_end() && peek() == ']') {
            ++pos_;
            return;
        }
        for (;;) {
            skip_space();
            if (v.items.size() >= lim_.max_array_items)
                fail("an array has more than " + std::to_string(lim_.max_array_items) + " elements");
            v.items.push_back(parse_value(depth));
            skip_space();
            if (at_end()) fail("unexpected end of text, expected ',' or ']'");
            if (peek() == ',') {
                ++pos_;
                continue;
            }
            if (peek() == ']') {
                ++pos_;
                return;
            }
            fail("expected ',' or ']' in an array");
        }
    }

    std::string parse_number() {
        const std::size_t start = pos_;
        const auto digits = [&] {
            const std::size_t from = pos_;
            while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
            return pos_ - from;
        };
        if (peek() == '-') ++pos_;
        if (at_end() || peek() < '0' || peek() > '9') fail("expected a digit in a number");
        if (peek() == '0') {
            ++pos_;
            if (!at_end() && peek() >= '0' && peek() <= '9') fail("leading zero in a number");
        } else {
            digits();
        }
        if (!at_end() && peek() == '.') {
            ++pos_;
            if (digits() == 0) fail("expected a digit after the decimal point");
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            ++pos_;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
            if (digits() == 0) fail("expected a digit in the exponent");
        }
        return std::string(s_.substr(start, pos_ - start));
    }

    std::uint32_t parse_hex4() {
        if (s_.size() - pos_ < 4) fail("unexpected end of text in a \\u escape");
        std::uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const char c = peek();
            std::uint32_t d;
            if (c >= '0' && c <= '9') d = static_cast<std::uint32_t>(c - '0');
            else if (c >= 'a' && c <= 'f') d = static_cast<std::uint32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') d = static_cast<std::uint32_t>(c - 'A' + 10);
            else fail("expected four hex digits after \\u");
            v = v * 16 + d;
            ++pos_;
        }
        return v;
    }

    std::string parse_string(std::size_t max_bytes, const char* what) {
        const std::size_t start = pos_;
        ++pos_;  // opening quote
        std::string out;
        for (;;) {
            if (out.size() > max_bytes)
                fail_at(start, std::string(what) + " is longer than " + std::to_string(max_bytes) + " bytes");
            if (at_end()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(peek());
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) fail("unescaped control character in a string");
            if (c == '\\') {
                parse_escape(out);
                continue;
            }
            const std::size_t len = utf8_sequence_length(s_, pos_);
            if (len == 0) fail("invalid UTF-8 in a string");
            out.append(s_.substr(pos_, len));
            pos_ += len;
        }
    }

    void parse_escape(std::string& out) {
        ++pos_;  // backslash
        if (at_end()) fail("unterminated escape sequence");
        const char e = peek();
        ++pos_;
        switch (e) {
            case '"': out.push_back('"'); return;
            case '\\': out.push_back('\\'); return;
            case '/': out.push_back('/'); return;
            case 'b': out.push_back('\b'); return;
            case 'f': out.push_back('\f'); return;
            case 'n': out.push_back('\n'); return;
            case 'r': out.push_back('\r'); return;
            case 't': out.push_back('\t'); return;
            case 'u': break;
            default: --pos_, fail("invalid escape sequence");
        }
        std::uint32_t cp = parse_hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail("lone low surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.substr(pos_, 2) != "\\u") fail("high surrogate not followed by a \\u low surrogate");
            pos_ += 2;
            const std::uint32_t low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        ctdl::data::utf8_append(out, static_cast<char32_t>(cp));  // a scalar value: surrogates were paired above
    }
};

}  // namespace detail

/// Parses one JSON document; throws parse_error (a ctdl::error) if text is not strict JSON.
inline value parse(std::string_view text) { return detail::parser{text}.parse_document(); }

/// As parse(text), and parse_error for a document beyond lim.
inline value parse(std::string_view text, const limits& lim) { return detail::parser{text, lim}.parse_document(); }

/// Parses text, which must be one JSON object, a member at a time: for each member in
/// document order, limits_for(const std::string& key) returns the json::limits for its
/// value (depth counted from the value), then on_member(std::string key, json::value v)
/// receives it. Duplicate keys are refused (parse_error, after the members before the end
/// have been passed on); so is anything parse would refuse, or beyond root.
template <class LimitsFor, class OnMember>
void for_each_member(std::string_view text, const member_limits& root, LimitsFor&& limits_for, OnMember&& on_member) {
    detail::parser{text}.for_each_member(root, limits_for, on_member);
}

/// True if s is well-formed UTF-8 (what a JSON string may hold).
inline bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t len = detail::utf8_sequence_length(s, i);
        if (len == 0) return false;
        i += len;
    }
    return true;
}

/// Appends s to out as a quoted JSON string. Throws ctdl::error if s is not valid UTF-8.
inline void write_string(std::string& out, std::string_view s) {
    if (!is_valid_utf8(s)) throw ctdl::error("JSON string is not valid UTF-8");
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(hex[c >> 4]);
                    out.push_back(hex[c & 0xF]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

/// Appends an unsigned integer as a JSON number.
inline void write_uint(std::string& out, std::uint64_t v) { out += std::to_string(v); }

}  // namespace ctdl::json
