// libFuzzer target: bpe_tokenizer::from_hf_json_string (ctdl/data/bpe_tokenizer.hpp) on
// arbitrary bytes, and, when they load, encode and decode of arbitrary text.
//
// The input is a tokenizer.json, optionally followed by a line "\n--text--\n" and a text to
// encode (without one, a fixed text with spaces, digits, non-ASCII and <|endoftext|> is used).
// Checks, beyond "no crash, no sanitizer report": only ctdl::error is thrown; a loaded
// tokenizer's ids are in [0, vocab_size()); encode refuses only invalid UTF-8; decode of
// any ids it gave is valid UTF-8; to_hf_json_string loads back and encodes the same.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <ctdl/data/bpe_tokenizer.hpp>

namespace {
[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_bpe_tokenizer: invariant broken: %s\n", what);
    std::abort();
}

void check_text(const ctdl::data::bpe_tokenizer& t, std::string_view text) {
    std::vector<int> ids;
    try {
        ids = t.encode(text);
    } catch (const ctdl::error&) {
        if (ctdl::data::utf8_invalid_offset(text) == std::string_view::npos) die("encode refused valid UTF-8");
        return;
    }
    if (ctdl::data::utf8_invalid_offset(text) != std::string_view::npos) die("encode accepted invalid UTF-8");
    for (const int id : ids)
        if (id < 0 || static_cast<std::size_t>(id) >= t.vocab_size()) die("an id outside [0, vocab_size())");
    const std::string back = t.decode(ids);
    if (ctdl::data::utf8_invalid_offset(back) != std::string_view::npos) die("decode gave invalid UTF-8");
    (void)t.decode(ids, true);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    constexpr std::string_view mark = "\n--text--\n";
    const std::size_t cut = all.find(mark);
    const std::string_view json = all.substr(0, cut);
    const std::string_view text = cut == std::string_view::npos ? std::string_view(" Hello  wörld 123 <|endoftext|>x\t\n 😀")
                                                                : all.substr(cut + mark.size());
    ctdl::data::bpe_tokenizer t;
    try {
        t = ctdl::data::bpe_tokenizer::from_hf_json_string(json, "fuzz.json");
    } catch (const ctdl::error&) {
        return 0;
    }
    check_text(t, text);
    ctdl::data::bpe_tokenizer again;
    try {
        again = ctdl::data::bpe_tokenizer::from_hf_json_string(t.to_hf_json_string(), "written.json");
    } catch (const ctdl::error&) {
        die("to_hf_json_string does not load back");
    }
    if (again.vocab_size() != t.vocab_size() || again.merges() != t.merges()) die("the written file differs");
    try {
        if (again.encode(text) != t.encode(text)) die("the written file encodes differently");
    } catch (const ctdl::error&) {
    }
    return 0;
}
