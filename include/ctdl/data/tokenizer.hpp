#pragma once
// Tokenizers for character-level language models: text <-> token ids (int).
//
//   byte_tokenizer: 256 symbols, token id = byte value. Any byte string round-trips.
//     auto ids = ctdl::data::byte_tokenizer::encode("héllo");   // 6 ids (é is two bytes)
//     using embed = nn::embedding<ctdl::data::byte_tokenizer::vocab_size, 64>;
//
//   char_tokenizer: the distinct Unicode code points of a corpus, sorted; token id = rank.
//     ctdl::data::char_tokenizer tok{corpus};                     // ctdl::error on invalid UTF-8
//     std::vector<int> ids = tok.encode("hello");                 // ctdl::error on an unknown character
//     std::string meta = tok.to_string();                         // one line, for checkpoint metadata
//     auto again = ctdl::data::char_tokenizer::from_string(meta); // validated
//
// With unknown::map_to_unk the vocabulary gets one more id, unk_id() = the number of
// code points, that every character outside the vocabulary encodes to; it decodes to
// U+FFFD (the replacement character).
//
// Serialized form (one line, ASCII, so it fits in any metadata string):
//   ctdl.char_tokenizer v1 unk=0 symbols=3 U+000A U+0020 U+0061
// i.e. a header, the unknown flag, the number of code points, then the code points in
// strictly increasing order.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "utf8.hpp"

namespace ctdl::data {

// ---------------------------------------------------------------- byte_tokenizer

struct byte_tokenizer {
    static constexpr std::size_t vocab_size = 256;

    /// Token i = the byte s[i] as an unsigned value in [0, 256).
    static std::vector<int> encode(std::string_view s) {
        std::vector<int> ids(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) ids[i] = static_cast<std::uint8_t>(s[i]);
        return ids;
    }

    /// The bytes of ids; ctdl::error for an id outside [0, 256).
    static std::string decode(std::span<const int> ids) {
        std::string s(ids.size(), '\0');
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (ids[i] < 0 || ids[i] >= static_cast<int>(vocab_size))
                throw error("byte_tokenizer::decode: token " + std::to_string(ids[i]) + " at position " +
                            std::to_string(i) + " is outside [0, 256)");
            s[i] = static_cast<char>(static_cast<unsigned char>(ids[i]));
        }
        return s;
    }
};

// ---------------------------------------------------------------- char_tokenizer

class char_tokenizer {
public:
    /// What encode does with a character outside the vocabulary.
    enum class unknown { error, map_to_unk };

    /// The empty vocabulary (vocab_size() == 0); useful only as a target for assignment.
    char_tokenizer() = default;

    /// The sorted distinct code points of corpus. ctdl::error if corpus is not valid UTF-8
    /// (naming the byte offset) or has no characters.
    explicit char_tokenizer(std::string_view corpus, unknown policy = unknown::error) : policy_(policy) {
        std::vector<char32_t> cps = utf8_decode(corpus, "char_tokenizer: corpus");
        if (cps.empty()) throw error("char_tokenizer: the corpus is empty; the vocabulary needs at least one character");
        std::sort(cps.begin(), cps.end());
        cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
        symbols_ = std::move(cps);
        index();
    }

    /// A vocabulary given as code points in any order (duplicates are merged).
    static char_tokenizer from_symbols(std::vector<char32_t> symbols, unknown policy = unknown::error) {
        std::string text;
        for (char32_t cp : symbols) utf8_append(text, cp);  // validates each scalar value
        return char_tokenizer(text, policy);
    }

    /// Number of ids: the code points, plus one for <unk> under unknown::map_to_unk.
    std::size_t vocab_size() const noexcept { return symbols_.size() + (policy_ == unknown::map_to_unk ? 1 : 0); }
    /// The code points, sorted; id i is symbols()[i].
    const std::vector<char32_t>& symbols() const noexcept { return symbols_; }
    unknown unknown_policy() const noexcept { return policy_; }
    /// The id of <unk>, if the vocabulary has one.
    std::optional<int> unk_id() const noexcept {
        if (policy_ == unknown::map_to_unk) return static_cast<int>(symbols_.size());
        return std::nullopt;
    }

    /// The id of code point cp, or nullopt if it is not in the vocabulary.
    std::optional<int> find(char32_t cp) const noexcept {
        if (cp < ascii_.size()) {
            if (ascii_[cp] >= 0) return ascii_[cp];
            return std::nullopt;
        }
        const auto it = std::lower_bound(symbols_.begin(), symbols_.end(), cp);
        if (it != symbols_.end() && *it == cp) return static_cast<int>(it - symbols_.begin());
        return std::nullopt;
    }

    /// One id per code point of s. ctdl::error for invalid UTF-8 (naming the byte offset),
    /// and, under unknown::error, for a character outside the vocabulary (naming it and
    /// its byte offset).
    std::vector<int> encode(std::string_view s) const {
        std::vector<int> ids;
        ids.reserve(s.size());
        for (std::size_t i = 0; i < s.size();) {
            const utf8_step st = utf8_next(s, i);
            if (st.length == 0) utf8_check(s, "char_tokenizer::encode");
            if (const auto id = find(st.code_point)) {
                ids.push_back(*id);
            } else if (policy_ == unknown::map_to_unk) {
                ids.push_back(static_cast<int>(symbols_.size()));
            } else {
                throw error("char_tokenizer::encode: character " + describe_code_point(st.code_point) +
                            " at byte offset " + std::to_string(i) + " is not in the vocabulary of " +
                            std::to_string(symbols_.size()) + " characters");
            }
            i += st.length;
        }
        return ids;
    }

    /// The UTF-8 text of ids; <unk> decodes to U+FFFD. ctdl::error for an id outside [0, vocab_size()).
    std::string decode(std::span<const int> ids) const {
        std::string s;
        s.reserve(ids.size());
        for (std::size_t i = 0; i < ids.size(); ++i) {
            const int id = ids[i];
            if (id < 0 || static_cast<std::size_t>(id) >= vocab_size())
                throw error("char_tokenizer::decode: token " + std::to_string(id) + " at position " + std::to_string(i) +
                            " is outside [0, " + std::to_string(vocab_size()) + ")");
            utf8_append(s, static_cast<std::size_t>(id) < symbols_.size() ? symbols_[static_cast<std::size_t>(id)]
                                                                          : char32_t{0xFFFD});
        }
        return s;
    }

    /// The vocabulary as one ASCII line (format in the header comment).
    std::string to_string() const {
        std::string s = std::string(magic) + " unk=" + (policy_ == unknown::map_to_unk ? "1" : "0") +
                        " symbols=" + std::to_string(symbols_.size());
        for (char32_t cp : symbols_) {
            s += ' ';
            s += code_point_name(cp);
        }
        return s;
    }

    /// Parses to_string()'s form. ctdl::error naming the field and what was expected for a
    /// wrong header, a bad flag or count, a malformed or non-scalar code point, code points
    /// out of order or repeated, or a count that disagrees with the list.
    static char_tokenizer from_string(std::string_view text) {
        const auto fail = [](const std::string& what) -> void {
            throw error("char_tokenizer::from_string: " + what);
        };
        std::vector<std::string_view> words;
        for (std::size_t i = 0; i < text.size();) {
            while (i < text.size() && is_space(text[i])) ++i;
            std::size_t j = i;
            while (j < text.size() && !is_space(text[j])) ++j;
            if (j > i) words.push_back(text.substr(i, j - i));
            i = j;
        }
        if (words.size() < 2 || words[0] != magic.substr(0, magic.find(' ')) || words[1] != magic.substr(magic.find(' ') + 1))
            fail("expected the header '" + std::string(magic) + "'");
        if (words.size() < 4) fail("expected the fields 'unk=0|1' and 'symbols=N' after the header");

        char_tokenizer t;
        if (words[2] == "unk=0")
            t.policy_ = unknown::error;
        else if (words[2] == "unk=1")
            t.policy_ = unknown::map_to_unk;
        else
            fail("field 'unk': expected 'unk=0' or 'unk=1', found '" + std::string(words[2]) + "'");

        std::size_t count = 0;
        const std::string_view cw = words[3];
        if (cw.substr(0, 8) != "symbols=" || !parse_number(cw.substr(8), 10, count))
            fail("field 'symbols': expected 'symbols=N' with N a decimal count, found '" + std::string(cw) + "'");
        if (count == 0) fail("field 'symbols': the vocabulary needs at least one character");
        if (words.size() - 4 != count)
            fail("field 'symbols' says " + std::to_string(count) + " code points but " + std::to_string(words.size() - 4) +
                 " follow");

        t.symbols_.reserve(count);
        for (std::size_t k = 0; k < count; ++k) {
            const std::string_view w = words[4 + k];
            std::size_t v = 0;
            if (w.size() < 3 || w.substr(0, 2) != "U+" || w.size() > 10 || !parse_number(w.substr(2), 16, v))
                fail("code point " + std::to_string(k) + ": expected U+ and hexadecimal digits, found '" + std::string(w) +
                     "'");
            if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                fail("code point " + std::to_string(k) + " (" + std::string(w) + ") is not a Unicode scalar value");
            const auto cp = static_cast<char32_t>(v);
            if (!t.symbols_.empty() && cp <= t.symbols_.back())
                fail("code point " + std::to_string(k) + " (" + std::string(w) + ") is not greater than the one before (" +
                     code_point_name(t.symbols_.back()) + "); the list must be strictly increasing");
            t.symbols_.push_back(cp);
        }
        t.index();
        return t;
    }

    friend bool operator==(const char_tokenizer& a, const char_tokenizer& b) noexcept {
        return a.policy_ == b.policy_ && a.symbols_ == b.symbols_;
    }

private:
    static constexpr std::string_view magic = "ctdl.char_tokenizer v1";

    static constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

    static bool parse_number(std::string_view s, int base, std::size_t& out) noexcept {
        if (s.empty()) return false;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
        return ec == std::errc{} && p == s.data() + s.size();
    }

    /// The ASCII fast path of find().
    void index() noexcept {
        ascii_.fill(-1);
        for (std::size_t i = 0; i < symbols_.size() && symbols_[i] < ascii_.size(); ++i)
            ascii_[symbols_[i]] = static_cast<int>(i);
    }

    std::vector<char32_t> symbols_;
    unknown policy_ = unknown::error;
    std::array<int, 128> ascii_ = filled_ascii();

    static constexpr std::array<int, 128> filled_ascii() noexcept {
        std::array<int, 128> a{};
        a.fill(-1);
        return a;
    }
};

}  // namespace ctdl::data
