#pragma once
// A byte-level BPE trainer (the vocabulary that bpe_tokenizer::train builds a tokenizer from).
//
//   ctdl::data::detail::bpe_vocabulary v = ctdl::data::detail::train_bpe(text, 1000, {});
//   // v.tokens[id]: the token as byte-level characters ("Ġthe"); v.merges: (left, right) ids, by rank
//
// The text is cut at the special tokens (leftmost, longest first), each part pre-tokenized
// by GPT-2's pattern (byte_level::split; with a space in front when add_prefix_space and
// the part does not start with one), and the pieces counted. Ids: the special tokens first,
// in the order given, then the 256 bytes ordered by the character that stands for each
// (byte_level::byte_to_char), then one per merge. Each step merges the adjacent pair of
// symbols with the highest count over all pieces (a piece counts as often as it occurs;
// a pair inside "aaa" counts twice), ties broken by the smaller (left id, right id); all
// non-overlapping occurrences are merged left to right. Training stops at vocab_size ids,
// when no pair is left, or when the best count is below min_frequency. A merge whose
// result is already a token (reached another way) adds a merge but no id. These are the
// rules of the `tokenizers` library's BpeTrainer (with ByteLevel.alphabet() as initial
// alphabet), and on tests/golden/bpe_train.txt both give the same vocabulary and merges.
#include <array>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/text.hpp"
#include "byte_level.hpp"
#include "utf8.hpp"

namespace ctdl::data {

/// What bpe_tokenizer::train does besides the vocabulary size.
struct bpe_train_options {
    std::vector<std::string> special_tokens = {};  ///< ids 0, 1, ...; matched in the text (and in encode) as single tokens
    std::uint64_t min_frequency = 2;               ///< a pair seen fewer times is not merged
    bool add_prefix_space = false;                 ///< GPT-2's ByteLevel(add_prefix_space): false
};

namespace detail {

struct bpe_vocabulary {
    std::vector<std::string> tokens;          ///< id -> token (byte-level characters; special tokens as given)
    std::vector<std::pair<int, int>> merges;  ///< by rank
    std::size_t special_count = 0;            ///< tokens[0 .. special_count) are the special tokens
};

/// Calls gap(std::string_view) for each part of text between the leftmost-longest matches of
/// the (non-empty) strings in specials, and match(std::size_t k) for each match of specials[k].
template <class OnGap, class OnMatch>
void split_specials(std::string_view text, const std::vector<std::string>& specials, OnGap&& gap, OnMatch&& match) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t best = specials.size(), best_len = 0;
        for (std::size_t k = 0; k < specials.size(); ++k) {
            const std::string& s = specials[k];
            if (s.size() > best_len && text.compare(i, s.size(), s) == 0) best = k, best_len = s.size();
        }
        if (best == specials.size()) {
            ++i;
            continue;
        }
        if (i > start) gap(text.substr(start, i - start));
        match(best);
        i += best_len;
        start = i;
    }
    if (start < text.size()) gap(text.substr(start));
}

inline bpe_vocabulary train_bpe(std::string_view text, std::size_t vocab_size, const bpe_train_options& opt) {
    utf8_check(text, "bpe_tokenizer::train: text");
    bpe_vocabulary v;
    std::unordered_map<std::string, int> ids;  // token -> id
    for (const std::string& s : opt.special_tokens) {
        if (s.empty()) throw error("bpe_tokenizer::train: a special token is empty");
        utf8_check(s, "bpe_tokenizer::train: special token");
        if (!ids.emplace(s, static_cast<int>(v.tokens.size())).second)
            throw error("bpe_tokenizer::train: special token " + ctdl::detail::quote(s, 80) + " is given twice");
        v.tokens.push_back(s);
    }
    v.special_count = v.tokens.size();
    if (vocab_size < v.tokens.size() + 256 || vocab_size > 0x7FFFFFFF)
        throw error("bpe_tokenizer::train: vocab_size " + std::to_string(vocab_size) + " is outside [" +
                    std::to_string(v.tokens.size() + 256) + ", 2^31): it must hold the " +
                    std::to_string(v.tokens.size()) + " special tokens and the 256 bytes");

    // The alphabet: bytes in the order of the characters that stand for them.
    std::array<int, 256> byte_id{};
    for (char32_t c = 0; c < 0x100 + 68; ++c) {
        const int b = byte_level::char_to_byte(c);
        if (b < 0) continue;
        std::string t;
        utf8_append(t, c);
        const auto [it, fresh] = ids.emplace(t, static_cast<int>(v.tokens.size()));
        if (fresh) v.tokens.push_back(t);
        byte_id[static_cast<std::size_t>(b)] = it->second;
    }

    // Count the pieces.
    std::unordered_map<std::string_view, std::uint64_t> piece_counts;
    std::vector<std::string> prefixed;  // parts with the space added in front
    prefixed.reserve(text.size() / 16 + 1);
    std::vector<std::string_view> parts;
    split_specials(text, opt.special_tokens, [&](std::string_view gap) { parts.push_back(gap); }, [](std::size_t) {});
    if (opt.add_prefix_space) {
        prefixed.reserve(parts.size());
        for (auto& p : parts)
            if (p.front() != ' ') p = prefixed.emplace_back(" " + std::string(p));
    }
    for (const std::string_view p : parts) byte_level::split(p, [&](std::string_view piece) { ++piece_counts[piece]; });

    std::vector<std::vector<int>> words;
    std::vector<std::uint64_t> counts;
    words.reserve(piece_counts.size());
    for (const auto& [piece, n] : piece_counts) {
        std::vector<int> w(piece.size());
        for (std::size_t i = 0; i < piece.size(); ++i) w[i] = byte_id[static_cast<std::uint8_t>(piece[i])];
        words.push_back(std::move(w));
        counts.push_back(n);
    }

    const auto key = [](int a, int b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); };
    std::unordered_map<std::uint64_t, std::int64_t> pair_count;
    std::unordered_map<std::uint64_t, std::vector<std::uint32_t>> where;  // pair -> words that may hold it
    for (std::size_t w = 0; w < words.size(); ++w)
        for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
            const std::uint64_t k = key(words[w][i], words[w][i + 1]);
            pair_count[k] += static_cast<std::int64_t>(counts[w]);
            auto& list = where[k];
            if (list.empty() || list.back() != w) list.push_back(static_cast<std::uint32_t>(w));
        }

    struct entry {
        std::int64_t count;
        std::uint64_t pair;
        bool operator<(const entry& o) const { return count != o.count ? count < o.count : pair > o.pair; }
    };
    std::priority_queue<entry> queue;
    for (const auto& [k, c] : pair_count) queue.push({c, k});

    std::vector<std::uint32_t> stamp(words.size(), 0);
    std::uint32_t round = 0;
    std::unordered_map<std::uint64_t, std::int64_t> changes;
    std::vector<std::pair<std::uint64_t, std::uint32_t>> gained;  // (pair, word) where a pair appeared
    while (v.tokens.size() < vocab_size && !queue.empty()) {
        const entry top = queue.top();
        queue.pop();
        const auto found = pair_count.find(top.pair);
        const std::int64_t now = found == pair_count.end() ? 0 : found->second;
        if (now != top.count) {  // stale: requeue with the count it has now (a newer entry covers increases)
            if (now < top.count && now > 0) queue.push({now, top.pair});
            continue;
        }
        if (now < 1 || static_cast<std::uint64_t>(now) < opt.min_frequency) break;

        const int a = static_cast<int>(top.pair >> 32), b = static_cast<int>(top.pair & 0xFFFFFFFFu);
        std::string merged = v.tokens[static_cast<std::size_t>(a)] + v.tokens[static_cast<std::size_t>(b)];
        const auto [it, fresh] = ids.emplace(std::move(merged), static_cast<int>(v.tokens.size()));
        if (fresh) v.tokens.push_back(it->first);
        const int c = it->second;
        v.merges.emplace_back(a, b);

        ++round;
        changes.clear();
        gained.clear();
        const std::vector<std::uint32_t> list = std::move(where[top.pair]);
        where.erase(top.pair);
        for (const std::uint32_t w : list) {
            if (stamp[w] == round) continue;
            stamp[w] = round;
            std::vector<int>& s = words[w];
            const auto n = static_cast<std::int64_t>(counts[w]);
            std::size_t out = 0;
            for (std::size_t i = 0; i < s.size();) {
                if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                    if (out > 0) {  // the symbol before, already written
                        changes[key(s[out - 1], a)] -= n;
                        changes[key(s[out - 1], c)] += n;
                        gained.emplace_back(key(s[out - 1], c), w);
                    }
                    if (i + 2 < s.size()) {
                        changes[key(b, s[i + 2])] -= n;
                        changes[key(c, s[i + 2])] += n;
                        gained.emplace_back(key(c, s[i + 2]), w);
                    }
                    changes[top.pair] -= n;
                    s[out++] = c;
                    i += 2;
                } else {
                    s[out++] = s[i++];
                }
            }
            s.resize(out);
        }
        for (const auto& [k, d] : changes) {
            if (d == 0) continue;
            const std::int64_t after = (pair_count[k] += d);
            if (d > 0) queue.push({after, k});
            if (after <= 0) pair_count.erase(k);
        }
        for (const auto& [k, w] : gained) {
            auto& l = where[k];
            if (l.empty() || l.back() != w) l.push_back(w);
        }
    }
    return v;
}

}  // namespace detail
}  // namespace ctdl::data
