#pragma once
// The pretraining example's tokenizer: a byte-level BPE vocabulary learned from the text
// (ctdl::data::bpe_tokenizer::train), or the text's characters (ctdl::data::char_tokenizer),
// with at most a given number of ids; and how it is stored beside the snapshot.
//
//   auto tok = examples::pretrain_tokenizer::learn(examples::tokenizer_kind::bpe, text, 512);
//   ctdl::save(net, dir / "gpt.safetensors", {tok.metadata_entry()});
//   examples::save_tokenizer_file(tok, dir);                            // dir/tokenizer.json (BPE)
//   auto again = examples::load_tokenizer(dir / "gpt.safetensors");     // its metadata (and tokenizer.json)
//
// Stored as: a BPE tokenizer in DIR/tokenizer.json (Hugging Face's format, which
// bpe_tokenizer::from_hf_json, the `tokenizers` library and ctdl_add_inference_binary's
// TOKENIZER read) and, the same text, in the snapshot's metadata under "tokenizer.json"; a
// character tokenizer in the metadata under "tokenizer" (char_tokenizer::to_string), as
// before. So a snapshot carries its tokenizer either way.
#include <algorithm>
#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <ctdl/core/error.hpp>
#include <ctdl/data/bpe_tokenizer.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/data/utf8.hpp>
#include <ctdl/io/snapshot.hpp>

namespace examples {

enum class tokenizer_kind { bpe, chars };

inline constexpr const char* tokenizer_file = "tokenizer.json";
/// The metadata keys: a BPE tokenizer's tokenizer.json text, a character tokenizer's line.
inline constexpr const char* bpe_metadata_key = "tokenizer.json";
inline constexpr const char* char_metadata_key = "tokenizer";

class pretrain_tokenizer {
public:
    /// A tokenizer of at most max_ids ids for text: BPE trained on it (the 256 bytes and up
    /// to max_ids - 256 merges; no special tokens), or its most frequent characters with
    /// the others mapped to <unk>. ctdl::error for a max_ids the kind cannot have.
    static pretrain_tokenizer learn(tokenizer_kind kind, std::string_view text, std::size_t max_ids) {
        if (kind == tokenizer_kind::bpe) {
            if (max_ids < 256)
                throw ctdl::error("a byte-level BPE vocabulary needs at least 256 ids (one per byte), not " +
                                  std::to_string(max_ids));
            return pretrain_tokenizer(ctdl::data::bpe_tokenizer::train(text, max_ids));
        }
        if (max_ids < 2)
            throw ctdl::error("a character vocabulary needs at least 2 ids (a character and <unk>), not " +
                              std::to_string(max_ids));
        ctdl::data::char_tokenizer all(text);
        if (all.vocab_size() <= max_ids) return pretrain_tokenizer(std::move(all));
        std::map<char32_t, std::size_t> count;
        for (char32_t c : ctdl::data::utf8_decode(text)) ++count[c];
        std::vector<std::pair<std::size_t, char32_t>> by_count;
        for (auto [c, n] : count) by_count.push_back({n, c});
        std::sort(by_count.rbegin(), by_count.rend());
        std::vector<char32_t> keep;
        for (std::size_t i = 0; i + 1 < max_ids; ++i) keep.push_back(by_count[i].second);
        std::sort(keep.begin(), keep.end());
        return pretrain_tokenizer(
            ctdl::data::char_tokenizer::from_symbols(keep, ctdl::data::char_tokenizer::unknown::map_to_unk));
    }

    explicit pretrain_tokenizer(ctdl::data::bpe_tokenizer t) : t_(std::move(t)) {}
    explicit pretrain_tokenizer(ctdl::data::char_tokenizer t) : t_(std::move(t)) {}

    tokenizer_kind kind() const noexcept { return t_.index() == 0 ? tokenizer_kind::bpe : tokenizer_kind::chars; }
    const char* name() const noexcept { return kind() == tokenizer_kind::bpe ? "bpe" : "char"; }
    std::size_t vocab_size() const {
        return std::visit([](const auto& t) { return t.vocab_size(); }, t_);
    }
    std::vector<int> encode(std::string_view s) const {
        return std::visit([s](const auto& t) { return t.encode(s); }, t_);
    }
    std::string decode(std::span<const int> ids) const {
        return std::visit([ids](const auto& t) { return t.decode(ids); }, t_);
    }
    /// The characters (Unicode code points) that ids stand for: one per id for the
    /// character tokenizer, those of the decoded text for BPE (each ill-formed byte run,
    /// as at a split's edge, counted as the one U+FFFD it decodes to).
    std::size_t characters(std::span<const int> ids) const {
        if (kind() == tokenizer_kind::chars) return ids.size();
        const std::string s = decode(ids);
        return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
            return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        }));
    }
    /// The BPE tokenizer, or nullptr for the character one.
    const ctdl::data::bpe_tokenizer* bpe() const noexcept { return std::get_if<ctdl::data::bpe_tokenizer>(&t_); }
    const ctdl::data::char_tokenizer* chars() const noexcept { return std::get_if<ctdl::data::char_tokenizer>(&t_); }

    /// The snapshot metadata entry that holds this tokenizer.
    std::pair<std::string, std::string> metadata_entry() const {
        if (const auto* b = bpe()) return {bpe_metadata_key, b->to_hf_json_string()};
        return {char_metadata_key, chars()->to_string()};
    }

private:
    std::variant<ctdl::data::bpe_tokenizer, ctdl::data::char_tokenizer> t_;
};

/// Writes what a tokenizer needs beside the snapshot in dir: for BPE dir/tokenizer.json (for
/// a character tokenizer, a tokenizer.json an earlier BPE run left is removed, so the folder
/// never pairs a snapshot with another run's tokenizer). Call it with the snapshot's save.
inline void save_tokenizer_file(const pretrain_tokenizer& tok, const std::filesystem::path& dir) {
    if (const auto* b = tok.bpe()) {
        b->to_hf_json(dir / tokenizer_file);
    } else {
        std::error_code ec;
        std::filesystem::remove(dir / tokenizer_file, ec);
        if (ec) throw ctdl::error("cannot remove " + (dir / tokenizer_file).string() + ": " + ec.message());
    }
}

/// The tokenizer of a snapshot that the example wrote: from its "tokenizer.json" metadata
/// (checked against dir/tokenizer.json when that file is there: the two must be the same
/// tokenizer) or its "tokenizer" metadata. ctdl::error naming the file when it has neither.
inline pretrain_tokenizer load_tokenizer(const std::filesystem::path& snapshot) {
    const ctdl::metadata meta = ctdl::snapshot_metadata(snapshot);
    if (const auto it = meta.find(bpe_metadata_key); it != meta.end()) {
        auto tok = ctdl::data::bpe_tokenizer::from_hf_json_string(it->second, snapshot.string() + " metadata \"" +
                                                                                  bpe_metadata_key + "\"");
        const auto beside = snapshot.parent_path() / tokenizer_file;
        if (std::filesystem::exists(beside) &&
            ctdl::data::bpe_tokenizer::from_hf_json(beside).to_hf_json_string() != tok.to_hf_json_string())
            throw ctdl::error(beside.string() + " is not the tokenizer stored in " + snapshot.string());
        return pretrain_tokenizer(std::move(tok));
    }
    if (const auto it = meta.find(char_metadata_key); it != meta.end())
        return pretrain_tokenizer(ctdl::data::char_tokenizer::from_string(it->second));
    throw ctdl::error(snapshot.string() + ": the metadata holds no tokenizer (neither \"" + bpe_metadata_key +
                      "\" nor \"" + char_metadata_key + "\")");
}

}  // namespace examples
