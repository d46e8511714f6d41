#pragma once
// A byte-level BPE tokenizer (GPT-2's kind) that reads and writes the Hugging Face
// `tokenizers` library's tokenizer.json and encodes and decodes as that library does.
//
//   auto tok = ctdl::data::bpe_tokenizer::from_hf_json("tokenizer.json");   // ctdl::error naming the field
//   std::vector<int> ids = tok.encode("Hello world<|endoftext|>");          // = Tokenizer.encode(...).ids
//   std::string text = tok.decode(ids);                                     // = Tokenizer.decode(ids, skip_special_tokens=False)
//   auto mine = ctdl::data::bpe_tokenizer::train(corpus, 1000, {.special_tokens = {"<|endoftext|>"}});
//   mine.to_hf_json("mine.json");                                           // loads in `tokenizers` too
//
// Encoding: the added tokens (tokenizer.json's "added_tokens", e.g. <|endoftext|>) are found
// first, leftmost and longest first: those with "normalized": false over the whole text,
// then those with "normalized": true in the text between; "lstrip" / "rstrip" make a match
// take the whitespace before / after it. Each stretch of text between them gets a space in
// front when the pre-tokenizer's add_prefix_space is set and it does not start with one,
// is cut by GPT-2's pattern (byte_level::split; not when use_regex is false), and each
// piece's bytes become symbols (the vocabulary's byte tokens) that are merged pair by pair,
// the pair of lowest merge rank first (leftmost among equals), until no pair of the
// merges is left. With ignore_merges, a piece that is itself a token is that token. A byte
// with no token is the unk_token when there is one (consecutive ones fused with fuse_unk),
// else dropped, as `tokenizers` does.
//
// Decoding: each token stands for the bytes of its byte-level characters (a token with a
// character that stands for no byte, such as an added token with a space, for its own
// UTF-8 bytes); the bytes of all tokens are joined and each ill-formed UTF-8 run becomes
// U+FFFD. Unlike `tokenizers`, which drops an unknown id, an id outside [0, vocab_size())
// is a ctdl::error; and special tokens are kept unless skip_special_tokens.
//
// What from_hf_json accepts: model.type "BPE" with vocab and merges (strings "a b" or pairs
// ["a", "b"]), no dropout, no continuing_subword_prefix / end_of_word_suffix, no
// byte_fallback; a ByteLevel pre_tokenizer and decoder; post_processor null or ByteLevel
// (which adds no ids); normalizer, truncation and padding null; added tokens without
// single_word. Vocabulary ids are 0..N-1, each once; an added token has the id of the same
// token in the vocabulary, or else one of N, N+1, ... Everything else is refused with a
// ctdl::error that names the field ('model.merges[12]', 'pre_tokenizer.type', ...).
//
// Encoding caches each piece's ids for the length of one encode call (of a text of 4 KiB or
// more); a bpe_tokenizer is
// immutable after it is made, so any number of threads may encode with one.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <forward_list>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/file_io.hpp"
#include "../io/json.hpp"
#include "../io/text.hpp"
#include "bpe_trainer.hpp"
#include "byte_level.hpp"
#include "utf8.hpp"

namespace ctdl::data {

class bpe_tokenizer {
public:
    /// An entry of tokenizer.json's "added_tokens".
    struct added_token {
        std::string content;
        int id = 0;
        bool special = false;
        bool lstrip = false;
        bool rstrip = false;
        bool normalized = true;
    };

    /// The empty tokenizer (vocab_size() == 0); useful only as a target for assignment.
    bpe_tokenizer() = default;

    /// Reads a tokenizer.json; ctdl::error naming the file and the field for anything
    /// malformed or unsupported (see the header comment).
    static bpe_tokenizer from_hf_json(const std::filesystem::path& path) {
        const std::vector<std::byte> bytes = ctdl::detail::read_file(path);
        return from_hf_json_string(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                   path.string());
    }

    /// As from_hf_json, from the text of the file; source names it in messages.
    static bpe_tokenizer from_hf_json_string(std::string_view json_text, std::string_view source = "tokenizer.json") {
        bpe_tokenizer t;
        t.load(json_text, source);
        return t;
    }

    /// A tokenizer trained on text (see bpe_trainer.hpp for the rules) with vocab_size ids
    /// at most: the special tokens, the 256 bytes, then the merges. ctdl::error for invalid
    /// UTF-8 or a vocab_size that cannot hold the special tokens and the bytes.
    static bpe_tokenizer train(std::string_view text, std::size_t vocab_size, const bpe_train_options& opt = {}) {
        detail::bpe_vocabulary v = detail::train_bpe(text, vocab_size, opt);
        bpe_tokenizer t;
        t.add_prefix_space_ = opt.add_prefix_space;
        t.tokens_ = std::move(v.tokens);
        t.model_size_ = t.tokens_.size();
        for (std::size_t k = 0; k < v.special_count; ++k)
            t.added_.push_back({t.tokens_[k], static_cast<int>(k), true, false, false, false});
        t.merges_ = std::move(v.merges);
        t.index("bpe_tokenizer::train");
        return t;
    }

    /// Number of ids: the model's vocabulary and the added tokens outside it.
    std::size_t vocab_size() const noexcept { return tokens_.size(); }
    /// The token of an id as tokenizer.json writes it ("Ġthe"); ctdl::error outside [0, vocab_size()).
    const std::string& id_to_token(int id) const {
        check_id(id, 0, "bpe_tokenizer::id_to_token");
        return tokens_[static_cast<std::size_t>(id)];
    }
    /// The id of a token (as tokenizer.json writes it), or nullopt.
    std::optional<int> token_to_id(std::string_view token) const {
        const auto it = token_ids_.find(std::string(token));
        if (it == token_ids_.end()) return std::nullopt;
        return it->second;
    }
    /// The merges by rank, as pairs of ids.
    const std::vector<std::pair<int, int>>& merges() const noexcept { return merges_; }
    const std::vector<added_token>& added_tokens() const noexcept { return added_; }
    bool add_prefix_space() const noexcept { return add_prefix_space_; }

    /// The ids of text (UTF-8; ctdl::error naming the byte offset of invalid UTF-8).
    std::vector<int> encode(std::string_view text) const {
        utf8_check(text, "bpe_tokenizer::encode");
        encoder e{*this};
        e.use_cache = text.size() >= 4096;
        e.ids.reserve(text.size() / 3 + 8);
        split_added(text, false, [&](std::string_view part) {
            split_added(part, true, [&](std::string_view gap) { e.encode_text(gap); },
                        [&](int id) { e.ids.push_back(id); });
        }, [&](int id) { e.ids.push_back(id); });
        return std::move(e.ids);
    }

    /// The text of ids (see the header comment); special tokens left out when
    /// skip_special_tokens. ctdl::error for an id outside [0, vocab_size()).
    std::string decode(std::span<const int> ids, bool skip_special_tokens = false) const {
        std::string bytes;
        bytes.reserve(ids.size() * 4);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            check_id(ids[i], i, "bpe_tokenizer::decode");
            const auto id = static_cast<std::size_t>(ids[i]);
            if (skip_special_tokens && special_[id]) continue;
            bytes += bytes_[id];
        }
        return byte_level::utf8_lossy(bytes);
    }

    /// tokenizer.json's text for this tokenizer (the layout `tokenizers` writes, merges as pairs).
    std::string to_hf_json_string() const {
        std::string o;
        const auto str = [&](std::string_view s) { json::write_string(o, s); };
        const auto flag = [](bool b) { return b ? "true" : "false"; };
        o += "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [";
        for (std::size_t k = 0; k < added_.size(); ++k) {
            const added_token& a = added_[k];
            o += k ? ",\n    {\"id\": " : "\n    {\"id\": ";
            o += std::to_string(a.id) + ", \"content\": ";
            str(a.content);
            o += std::string(", \"single_word\": false, \"lstrip\": ") + flag(a.lstrip) + ", \"rstrip\": " + flag(a.rstrip) +
                 ", \"normalized\": " + flag(a.normalized) + ", \"special\": " + flag(a.special) + "}";
        }
        o += added_.empty() ? "],\n" : "\n  ],\n";
        o += "  \"normalizer\": null,\n";
        o += std::string("  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": ") + flag(add_prefix_space_) +
             ", \"trim_offsets\": true, \"use_regex\": " + flag(use_regex_) + "},\n";
        o += "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n";
        o += "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n";
        o += "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ";
        if (unk_id_ >= 0) str(tokens_[static_cast<std::size_t>(unk_id_)]);
        else o += "null";
        o += std::string(",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n    \"fuse_unk\": ") +
             flag(fuse_unk_) + ",\n    \"byte_fallback\": false,\n    \"ignore_merges\": " + flag(ignore_merges_) +
             ",\n    \"vocab\": {";
        for (std::size_t i = 0; i < model_size_; ++i) {
            o += i ? ",\n      " : "\n      ";
            str(tokens_[i]);
            o += ": " + std::to_string(i);
        }
        o += model_size_ ? "\n    },\n    \"merges\": [" : "},\n    \"merges\": [";
        for (std::size_t r = 0; r < merges_.size(); ++r) {
            o += r ? ",\n      [" : "\n      [";
            str(tokens_[static_cast<std::size_t>(merges_[r].first)]);
            o += ", ";
            str(tokens_[static_cast<std::size_t>(merges_[r].second)]);
            o += "]";
        }
        o += merges_.empty() ? "]\n  }\n}\n" : "\n    ]\n  }\n}\n";
        return o;
    }

    /// Writes to_hf_json_string() to path (atomically: see io/file_io.hpp).
    void to_hf_json(const std::filesystem::path& path) const {
        const std::string text = to_hf_json_string();
        ctdl::detail::atomic_write(path, [&](auto&& write) { write(text.data(), text.size()); });
    }

private:
    struct merge_rule {
        std::uint32_t rank;
        int id;
    };

    std::vector<std::string> tokens_;               // id -> token as tokenizer.json writes it
    std::vector<std::string> bytes_;                // id -> the bytes it decodes to
    std::vector<unsigned char> special_;            // id -> a special added token
    std::size_t model_size_ = 0;                    // ids [0, model_size_) are the model's vocabulary
    std::unordered_map<std::string, int> token_ids_;  // the model's tokens -> id
    std::unordered_map<std::string, int> byte_ids_;   // bytes -> id, for the tokens made of byte characters
    std::array<int, 256> byte_id_{};                // byte -> its token, or -1
    std::vector<std::pair<int, int>> merges_;
    std::unordered_map<std::uint64_t, merge_rule> merge_rules_;  // (left, right) -> rank, result
    std::vector<added_token> added_;
    std::vector<std::size_t> by_length_;            // added_ indices, longest content first
    std::array<bool, 256> added_first_{};           // first bytes of added tokens
    bool add_prefix_space_ = false;
    bool use_regex_ = true;
    bool ignore_merges_ = false;
    bool fuse_unk_ = false;
    int unk_id_ = -1;

    static std::uint64_t pair_key(int a, int b) noexcept {
        return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b);
    }

    void check_id(int id, std::size_t at, const char* what) const {
        if (id < 0 || static_cast<std::size_t>(id) >= tokens_.size())
            throw error(std::string(what) + ": token " + std::to_string(id) + " at position " + std::to_string(at) +
                        " is outside [0, " + std::to_string(tokens_.size()) + ")");
    }

    // ------------------------------------------------------------ added tokens

    /// Cuts text at the added tokens whose "normalized" is `normalized`: gap(std::string_view)
    /// for the text between (non-empty), token(int id) for each match.
    template <class OnGap, class OnToken>
    void split_added(std::string_view text, bool normalized, OnGap&& gap, OnToken&& token) const {
        std::size_t start = 0;  // end of the last match (with what it stripped)
        for (std::size_t i = 0; i < text.size();) {
            if (!added_first_[static_cast<unsigned char>(text[i])]) {
                ++i;
                continue;
            }
            const added_token* hit = nullptr;
            for (const std::size_t k : by_length_) {
                const added_token& a = added_[k];
                if (a.normalized == normalized && text.compare(i, a.content.size(), a.content) == 0) {
                    hit = &a;
                    break;
                }
            }
            if (hit == nullptr) {
                ++i;
                continue;
            }
            std::size_t from = i, to = i + hit->content.size();
            if (hit->lstrip) from = std::max(start, space_before(text, from));
            if (hit->rstrip) to = space_after(text, to);
            if (from > start) gap(text.substr(start, from - start));
            token(hit->id);
            start = i = to;
        }
        if (start < text.size()) gap(text.substr(start));
    }

    /// Where the whitespace run that ends at byte `end` of text starts.
    static std::size_t space_before(std::string_view text, std::size_t end) {
        while (end > 0) {
            std::size_t b = end - 1;
            while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80) --b;
            const utf8_step st = utf8_next(text, b);
            if (st.length == 0 || byte_level::classify(st.code_point) != byte_level::char_class::space) break;
            end = b;
        }
        return end;
    }

    /// Where the whitespace run that starts at byte `begin` of text ends.
    static std::size_t space_after(std::string_view text, std::size_t begin) {
        while (begin < text.size()) {
            const utf8_step st = utf8_next(text, begin);
            if (st.length == 0 || byte_level::classify(st.code_point) != byte_level::char_class::space) break;
            begin += st.length;
        }
        return begin;
    }

    // ------------------------------------------------------------ BPE

    /// One encode call's state: the ids so far, a cache of pieces, scratch buffers.
    struct encoder {
        explicit encoder(const bpe_tokenizer& tok) : t(tok) {}
        const bpe_tokenizer& t;
        std::vector<int> ids;
        std::forward_list<std::string> prefixed;  // text with a space put in front (the cache points into it)
        bool use_cache = false;                   // only for long texts: on short ones it costs more than it saves
        std::unordered_map<std::string_view, std::pair<std::uint32_t, std::uint32_t>> cache;  // piece -> (offset, count) in cached
        std::vector<int> cached;
        struct symbol {
            int id, prev, next;
        };
        std::vector<symbol> syms;
        struct candidate {
            std::uint32_t rank, pos;
            bool operator>(const candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
        };
        std::vector<candidate> heap;

        static constexpr std::size_t cache_pieces = 1 << 16, cache_piece_bytes = 64;

        void encode_text(std::string_view text) {
            if (t.add_prefix_space_ && text.front() != ' ') text = prefixed.emplace_front(" " + std::string(text));
            if (t.use_regex_) byte_level::split(text, [&](std::string_view piece) { encode_piece(piece); });
            else encode_piece(text);
        }

        void encode_piece(std::string_view piece) {
            const bool cacheable = use_cache && piece.size() <= cache_piece_bytes;
            if (cacheable) {
                const auto it = cache.find(piece);
                if (it != cache.end()) {
                    ids.insert(ids.end(), cached.begin() + it->second.first,
                               cached.begin() + it->second.first + it->second.second);
                    return;
                }
            }
            const std::size_t before = ids.size();
            merge(piece);
            if (cacheable && cache.size() < cache_pieces) {
                cache.emplace(piece, std::pair{static_cast<std::uint32_t>(cached.size()),
                                               static_cast<std::uint32_t>(ids.size() - before)});
                cached.insert(cached.end(), ids.begin() + static_cast<std::ptrdiff_t>(before), ids.end());
            }
        }

        void push(std::uint32_t pos) {
            const symbol& s = syms[pos];
            if (s.next < 0) return;
            const auto it = t.merge_rules_.find(pair_key(s.id, syms[static_cast<std::size_t>(s.next)].id));
            if (it == t.merge_rules_.end()) return;
            heap.push_back({it->second.rank, pos});
            std::push_heap(heap.begin(), heap.end(), std::greater<>{});
        }

        static constexpr std::size_t small_piece = 24;
        static constexpr std::uint32_t no_rank = 0xFFFFFFFFu;

        /// The rank of the pair at symbol pos and the one after it, or no_rank.
        std::uint32_t rank_at(std::size_t pos, int& result) const {
            const symbol& s = syms[pos];
            if (s.next < 0) return no_rank;
            const auto it = t.merge_rules_.find(pair_key(s.id, syms[static_cast<std::size_t>(s.next)].id));
            if (it == t.merge_rules_.end()) return no_rank;
            result = it->second.id;
            return it->second.rank;
        }

        /// The same merges as the heap for a short piece: scan for the lowest (rank, position).
        void merge_small() {
            std::array<std::uint32_t, small_piece> rank;
            std::array<int, small_piece> result;
            for (std::size_t i = 0; i < syms.size(); ++i) rank[i] = rank_at(i, result[i]);
            for (;;) {
                std::size_t best = 0;
                for (std::size_t i = 0; i < syms.size(); i = static_cast<std::size_t>(syms[i].next)) {
                    if (rank[i] < rank[best]) best = i;
                    if (syms[i].next < 0) break;
                }
                if (rank[best] == no_rank) return;
                symbol& s = syms[best];
                symbol& r = syms[static_cast<std::size_t>(s.next)];
                s.id = result[best];
                r.id = -1;
                s.next = r.next;
                if (r.next >= 0) syms[static_cast<std::size_t>(r.next)].prev = static_cast<int>(best);
                rank[best] = rank_at(best, result[best]);
                if (s.prev >= 0) rank[static_cast<std::size_t>(s.prev)] = rank_at(static_cast<std::size_t>(s.prev), result[static_cast<std::size_t>(s.prev)]);
            }
        }

        void merge(std::string_view piece) {
            if (t.ignore_merges_) {
                const auto it = t.byte_ids_.find(std::string(piece));
                if (it != t.byte_ids_.end()) {
                    ids.push_back(it->second);
                    return;
                }
            }
            syms.clear();
            bool last_unk = false;
            for (const char ch : piece) {
                const int id = t.byte_id_[static_cast<unsigned char>(ch)];
                if (id < 0) {
                    if (t.unk_id_ < 0) continue;  // dropped, as `tokenizers` does without an unk_token
                    if (t.fuse_unk_ && last_unk) continue;
                    syms.push_back({t.unk_id_, static_cast<int>(syms.size()) - 1, -1});
                    last_unk = true;
                } else {
                    syms.push_back({id, static_cast<int>(syms.size()) - 1, -1});
                    last_unk = false;
                }
                if (syms.size() > 1) syms[syms.size() - 2].next = static_cast<int>(syms.size()) - 1;
            }
            if (syms.size() > 1 && syms.size() <= small_piece) {
                merge_small();
            } else if (syms.size() > 1) {
                heap.clear();
                for (std::uint32_t i = 0; i + 1 < syms.size(); ++i) push(i);
                while (!heap.empty()) {
                    std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
                    const candidate c = heap.back();
                    heap.pop_back();
                    symbol& s = syms[c.pos];
                    if (s.id < 0 || s.next < 0) continue;  // merged into the symbol before it, or last
                    symbol& r = syms[static_cast<std::size_t>(s.next)];
                    const auto it = t.merge_rules_.find(pair_key(s.id, r.id));
                    if (it == t.merge_rules_.end() || it->second.rank != c.rank) continue;  // the pair has changed
                    s.id = it->second.id;
                    r.id = -1;
                    s.next = r.next;
                    if (r.next >= 0) syms[static_cast<std::size_t>(r.next)].prev = static_cast<int>(c.pos);
                    if (s.prev >= 0) push(static_cast<std::uint32_t>(s.prev));
                    push(c.pos);
                }
            }
            for (std::size_t i = 0; i < syms.size(); i = static_cast<std::size_t>(syms[i].next)) {
                ids.push_back(syms[i].id);
                if (syms[i].next < 0) break;
            }
        }
    };

    // ------------------------------------------------------------ loading

    struct reader {
        std::string source;

        [[noreturn]] void fail(const std::string& field, const std::string& what) const {
            throw error("bpe_tokenizer: " + source + ": field '" + field + "' " + what);
        }
        const json::value* member(const json::value& obj, std::string_view key) const {
            const json::value* v = obj.find(key);
            return v != nullptr && v->kind != json::kind::null ? v : nullptr;
        }
        const json::value& required(const json::value& obj, std::string_view key, const std::string& field,
                                    json::kind kind, const char* expected) const {
            const json::value* v = obj.find(key);
            if (v == nullptr) fail(field, std::string("is missing (expected ") + expected + ")");
            if (v->kind != kind) fail(field, std::string("is not ") + expected);
            return *v;
        }
        bool flag(const json::value& obj, std::string_view key, const std::string& field, bool otherwise) const {
            const json::value* v = member(obj, key);
            if (v == nullptr) return otherwise;
            if (v->kind != json::kind::boolean) fail(field, "is not true or false");
            return v->boolean;
        }
        /// obj[key] must be absent or null.
        void absent(const json::value& obj, std::string_view key, const std::string& field, const char* why) const {
            if (member(obj, key) != nullptr) fail(field, std::string("is not null: ") + why);
        }
        /// obj.type must be the string want.
        void type(const json::value& obj, const std::string& field, std::string_view want) const {
            const json::value& t = required(obj, "type", field + ".type", json::kind::string, "a string");
            if (t.text != want)
                fail(field + ".type", "is " + ctdl::detail::quote(t.text, 40) + ", expected \"" + std::string(want) +
                                          "\" (only byte-level BPE tokenizers are supported)");
        }
        int id(const json::value& v, const std::string& field) const {
            const std::optional<std::uint64_t> n = v.as_u64();
            if (!n) fail(field, "is not a non-negative integer");
            if (*n > 0x7FFFFFFE) fail(field, "is " + std::to_string(*n) + ", out of range (ids are below 2^31 - 1)");
            return static_cast<int>(*n);
        }
    };

    void load(std::string_view text, std::string_view source) {
        const reader rd{std::string(source)};
        json::value doc;
        try {
            doc = json::parse(text, json::limits{.max_depth = 16});
        } catch (const json::parse_error& e) {
            throw error("bpe_tokenizer: " + rd.source + ": malformed JSON at byte " + std::to_string(e.position()) + ": " +
                        e.reason());
        }
        if (!doc.is_object()) rd.fail("(top level)", "is not a JSON object");

        rd.absent(doc, "normalizer", "normalizer", "normalizers are not supported");
        rd.absent(doc, "truncation", "truncation", "truncation is not supported");
        rd.absent(doc, "padding", "padding", "padding is not supported");

        const json::value& pre = rd.required(doc, "pre_tokenizer", "pre_tokenizer", json::kind::object, "an object");
        rd.type(pre, "pre_tokenizer", "ByteLevel");
        if (pre.find("add_prefix_space") == nullptr) rd.fail("pre_tokenizer.add_prefix_space", "is missing");
        add_prefix_space_ = rd.flag(pre, "add_prefix_space", "pre_tokenizer.add_prefix_space", false);
        use_regex_ = rd.flag(pre, "use_regex", "pre_tokenizer.use_regex", true);
        (void)rd.flag(pre, "trim_offsets", "pre_tokenizer.trim_offsets", true);

        const json::value& dec = rd.required(doc, "decoder", "decoder", json::kind::object, "an object");
        rd.type(dec, "decoder", "ByteLevel");
        if (const json::value* post = rd.member(doc, "post_processor")) {
            if (!post->is_object()) rd.fail("post_processor", "is not an object");
            rd.type(*post, "post_processor", "ByteLevel");
        }

        const json::value& model = rd.required(doc, "model", "model", json::kind::object, "an object");
        rd.type(model, "model", "BPE");
        rd.absent(model, "dropout", "model.dropout", "BPE dropout is not supported");
        for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
            const json::value* v = rd.member(model, k);
            if (v != nullptr && (!v->is_string() || !v->text.empty()))
                rd.fail(std::string("model.") + k, "is not null or \"\": not supported for byte-level BPE");
        }
        if (rd.flag(model, "byte_fallback", "model.byte_fallback", false))
            rd.fail("model.byte_fallback", "is true: not supported for byte-level BPE");
        fuse_unk_ = rd.flag(model, "fuse_unk", "model.fuse_unk", false);
        ignore_merges_ = rd.flag(model, "ignore_merges", "model.ignore_merges", false);

        // The vocabulary: ids 0..N-1, each once.
        const json::value& vocab = rd.required(model, "vocab", "model.vocab", json::kind::object, "an object");
        model_size_ = vocab.keys.size();
        tokens_.assign(model_size_, {});
        std::vector<unsigned char> seen(model_size_, 0);
        for (std::size_t i = 0; i < model_size_; ++i) {
            const std::string field = "model.vocab[" + ctdl::detail::quote(vocab.keys[i], 40) + "]";
            const int id = rd.id(vocab.items[i], field);
            if (static_cast<std::size_t>(id) >= model_size_)
                rd.fail(field, "is " + std::to_string(id) + ", out of range: the " + std::to_string(model_size_) +
                                   " tokens must have the ids 0.." + std::to_string(model_size_ - 1));
            if (seen[static_cast<std::size_t>(id)])
                rd.fail(field, "is " + std::to_string(id) + ", the id of another token too (duplicate id)");
            seen[static_cast<std::size_t>(id)] = 1;
            tokens_[static_cast<std::size_t>(id)] = vocab.keys[i];
        }
        for (std::size_t i = 0; i < model_size_; ++i) token_ids_.emplace(tokens_[i], static_cast<int>(i));

        if (const json::value* unk = rd.member(model, "unk_token")) {
            if (!unk->is_string()) rd.fail("model.unk_token", "is not a string or null");
            const auto it = token_ids_.find(unk->text);
            if (it == token_ids_.end()) rd.fail("model.unk_token", ctdl::detail::quote(unk->text, 40) + " is not in model.vocab");
            unk_id_ = it->second;
        }

        // The merges, as "a b" or ["a", "b"].
        const json::value& merges = rd.required(model, "merges", "model.merges", json::kind::array, "an array");
        merges_.reserve(merges.items.size());
        const auto lookup = [&](const std::string& tok, const std::string& field) {
            const auto it = token_ids_.find(tok);
            if (it == token_ids_.end()) rd.fail(field, ctdl::detail::quote(tok, 40) + " is not in model.vocab");
            return it->second;
        };
        for (std::size_t r = 0; r < merges.items.size(); ++r) {
            const std::string field = "model.merges[" + std::to_string(r) + "]";
            const json::value& m = merges.items[r];
            std::string a, b;
            if (m.is_string()) {
                const std::size_t sp = m.text.find(' ');
                if (sp == std::string::npos || m.text.find(' ', sp + 1) != std::string::npos)
                    rd.fail(field, "is " + ctdl::detail::quote(m.text, 40) + ", not two tokens separated by one space");
                a = m.text.substr(0, sp), b = m.text.substr(sp + 1);
            } else if (m.is_array() && m.items.size() == 2 && m.items[0].is_string() && m.items[1].is_string()) {
                a = m.items[0].text, b = m.items[1].text;
            } else {
                rd.fail(field, "is not a string \"a b\" or a pair [\"a\", \"b\"] of strings");
            }
            merges_.emplace_back(lookup(a, field), lookup(b, field));
            lookup(a + b, field);  // the merged token must be in the vocabulary
        }

        // Added tokens.
        if (const json::value* added = rd.member(doc, "added_tokens")) {
            if (!added->is_array()) rd.fail("added_tokens", "is not an array");
            std::size_t next = model_size_;
            for (std::size_t k = 0; k < added->items.size(); ++k) {
                const std::string field = "added_tokens[" + std::to_string(k) + "]";
                const json::value& e = added->items[k];
                if (!e.is_object()) rd.fail(field, "is not an object");
                added_token a;
                a.content = rd.required(e, "content", field + ".content", json::kind::string, "a string").text;
                if (a.content.empty()) rd.fail(field + ".content", "is empty");
                a.id = rd.id(rd.required(e, "id", field + ".id", json::kind::number, "a number"), field + ".id");
                a.special = rd.flag(e, "special", field + ".special", false);
                a.lstrip = rd.flag(e, "lstrip", field + ".lstrip", false);
                a.rstrip = rd.flag(e, "rstrip", field + ".rstrip", false);
                a.normalized = rd.flag(e, "normalized", field + ".normalized", !a.special);
                if (rd.flag(e, "single_word", field + ".single_word", false))
                    rd.fail(field + ".single_word", "is true: not supported");
                for (const added_token& o : added_)
                    if (o.content == a.content) rd.fail(field + ".content", ctdl::detail::quote(a.content, 40) + " is added twice");
                const auto in_vocab = token_ids_.find(a.content);
                if (in_vocab != token_ids_.end()) {
                    if (a.id != in_vocab->second)
                        rd.fail(field + ".id", "is " + std::to_string(a.id) + ", but model.vocab has " +
                                                   ctdl::detail::quote(a.content, 40) + " as " + std::to_string(in_vocab->second));
                } else {
                    if (static_cast<std::size_t>(a.id) != next)
                        rd.fail(field + ".id", "is " + std::to_string(a.id) + ", expected " + std::to_string(next) +
                                                   " (added tokens outside model.vocab take the ids after it, in order)");
                    ++next;
                    tokens_.push_back(a.content);
                }
                added_.push_back(std::move(a));
            }
        }
        index(rd.source);
    }

    /// Derives the lookup tables from tokens_, model_size_, merges_ and added_.
    void index(const std::string& source) {
        const std::size_t n = tokens_.size();
        bytes_.assign(n, {});
        special_.assign(n, 0);
        byte_id_.fill(-1);
        if (token_ids_.empty())
            for (std::size_t i = 0; i < model_size_; ++i) token_ids_.emplace(tokens_[i], static_cast<int>(i));
        for (std::size_t i = 0; i < n; ++i) {
            std::string b;
            if (byte_level::decode_chars(tokens_[i], b)) {
                if (i < model_size_) {
                    if (b.size() == 1) byte_id_[static_cast<unsigned char>(b[0])] = static_cast<int>(i);
                    byte_ids_.emplace(b, static_cast<int>(i));
                }
                bytes_[i] = std::move(b);
            } else {
                bytes_[i] = tokens_[i];  // its own UTF-8 bytes
            }
        }
        merge_rules_.reserve(merges_.size());
        for (std::size_t r = 0; r < merges_.size(); ++r) {
            const auto [a, b] = merges_[r];
            const int c = token_ids_.at(tokens_[static_cast<std::size_t>(a)] + tokens_[static_cast<std::size_t>(b)]);
            if (!merge_rules_.emplace(pair_key(a, b), merge_rule{static_cast<std::uint32_t>(r), c}).second)
                throw error("bpe_tokenizer: " + source + ": field 'model.merges[" + std::to_string(r) + "]' repeats an earlier merge");
        }
        added_first_.fill(false);
        by_length_.clear();
        for (std::size_t k = 0; k < added_.size(); ++k) {
            special_[static_cast<std::size_t>(added_[k].id)] = added_[k].special;
            added_first_[static_cast<unsigned char>(added_[k].content[0])] = true;
            by_length_.push_back(k);
        }
        std::stable_sort(by_length_.begin(), by_length_.end(),
                         [&](std::size_t x, std::size_t y) { return added_[x].content.size() > added_[y].content.size(); });
    }
};

}  // namespace ctdl::data
