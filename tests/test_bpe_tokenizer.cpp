// ctdl::data::bpe_tokenizer against the Hugging Face `tokenizers` library: ids and decoded
// text for the golden texts of tests/golden/make_bpe_golden.py (under tokenizers' files and
// under one that ctdl trained and wrote), the refusals of malformed or unsupported
// tokenizer.json files, the byte-level helpers, and the trainer.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/data/bpe_tokenizer.hpp>
#include <ctdl/io/json.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "golden_files.hpp"
#include "temp_dir.hpp"

using ctdl::data::bpe_tokenizer;
using Catch::Matchers::Contains;

namespace {

std::string read_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<int> ints(const ctdl::json::value& v) {
    std::vector<int> out;
    for (const auto& x : v.items) {
        const auto n = x.as_u64();
        REQUIRE(n);
        out.push_back(static_cast<int>(*n));
    }
    return out;
}

struct golden_case {
    std::string text;
    std::vector<int> ids, ids_b, ids_ctdl;
    std::string decoded, decoded_skip;
    bool decode_only = false;
};

std::vector<golden_case> golden_cases() {
    std::ifstream in(ctdl_test::golden("bpe_golden.jsonl"), std::ios::binary);
    REQUIRE(in);
    std::vector<golden_case> out;
    std::string line;
    while (std::getline(in, line)) {
        const ctdl::json::value v = ctdl::json::parse(line);
        golden_case c;
        c.text = v.find("text")->text;
        if (const auto* d = v.find("decode")) {
            c.decode_only = true;
            c.ids = ints(*d);
        } else {
            c.ids = ints(*v.find("ids"));
            c.ids_b = ints(*v.find("ids_b"));
            c.ids_ctdl = ints(*v.find("ids_ctdl"));
            c.decoded = v.find("decoded")->text;
            c.decoded_skip = v.find("decoded_skip")->text;
        }
        out.push_back(std::move(c));
    }
    return out;
}

const bpe_tokenizer& golden_a() {
    static const bpe_tokenizer t = bpe_tokenizer::from_hf_json(ctdl_test::golden("bpe_tokenizer.json"));
    return t;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
    const auto at = s.find(from);
    REQUIRE(at != std::string::npos);
    return s.replace(at, from.size(), to);
}

// A small valid tokenizer.json that the refusal tests change one field of.
const std::string base_json =
    R"({"version": "1.0", "truncation": null, "padding": null,)"
    R"( "added_tokens": [{"id": 5, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],)"
    R"( "normalizer": null,)"
    R"( "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},)"
    R"( "post_processor": null,)"
    R"( "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},)"
    R"( "model": {"type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,)"
    R"( "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, "merges": [["a", "b"], ["Ġ", "ab"]]}})";

void refused(const std::string& json, const std::string& needle) {
    INFO(json);
    REQUIRE_THROWS_WITH(bpe_tokenizer::from_hf_json_string(json, "bad.json"), Contains(needle) && Contains("bad.json"));
}

}  // namespace

// ---------------------------------------------------------------- byte-level helpers

TEST_CASE("bpe byte_level: GPT-2's byte-to-unicode map and its inverse", "[data][bpe]") {
    namespace bl = ctdl::data::byte_level;
    CHECK(bl::byte_to_char(' ') == U'\u0120');   // Ġ
    CHECK(bl::byte_to_char('\n') == U'\u010A');  // Ċ
    CHECK(bl::byte_to_char('a') == U'a');
    CHECK(bl::byte_to_char(0xAD) == U'\u0143');  // the soft hyphen is not kept
    std::vector<char32_t> seen;
    for (unsigned b = 0; b < 256; ++b) {
        const char32_t c = bl::byte_to_char(static_cast<std::uint8_t>(b));
        CHECK(bl::char_to_byte(c) == static_cast<int>(b));
        seen.push_back(c);
    }
    std::sort(seen.begin(), seen.end());
    CHECK(std::unique(seen.begin(), seen.end()) == seen.end());
    CHECK(bl::char_to_byte(U' ') == -1);
    CHECK(bl::char_to_byte(U'\u0144') == -1);
}

TEST_CASE("bpe byte_level: the split pattern on whitespace runs and contractions", "[data][bpe]") {
    const auto pieces = [](std::string_view s) {
        std::vector<std::string> out;
        ctdl::data::byte_level::split(s, [&](std::string_view p) { out.emplace_back(p); });
        return out;
    };
    using v = std::vector<std::string>;
    CHECK(pieces("a   b") == v{"a", "  ", " b"});
    CHECK(pieces("a \tb") == v{"a", " ", "\t", "b"});
    CHECK(pieces("don't I'll 'S") == v{"don", "'t", " I", "'ll", " '", "S"});
    CHECK(pieces("x  ") == v{"x", "  "});
    CHECK(pieces("12 ab!! ?") == v{"12", " ab", "!!", " ?"});
    CHECK(pieces("") == v{});
}

// ---------------------------------------------------------------- golden ids

TEST_CASE("bpe_tokenizer: ids equal tokenizers' on the golden texts", "[data][bpe]") {
    const bpe_tokenizer& a = golden_a();
    const bpe_tokenizer b = bpe_tokenizer::from_hf_json(ctdl_test::golden("bpe_tokenizer_b.json"));
    CHECK(a.vocab_size() == 804);
    CHECK(!a.add_prefix_space());
    CHECK(b.add_prefix_space());
    std::size_t texts = 0;
    for (const golden_case& c : golden_cases()) {
        if (c.decode_only) continue;
        INFO("text: " << ctdl::detail::quote(c.text, 200));
        CHECK(a.encode(c.text) == c.ids);
        CHECK(b.encode(c.text) == c.ids_b);
        CHECK(a.decode(c.ids) == c.decoded);
        CHECK(a.decode(c.ids, true) == c.decoded_skip);
        ++texts;
    }
    CHECK(texts >= 30);
}

TEST_CASE("bpe_tokenizer: decode of id runs that cut UTF-8 characters equals tokenizers'", "[data][bpe]") {
    std::size_t runs = 0;
    for (const golden_case& c : golden_cases()) {
        if (!c.decode_only) continue;
        INFO("ids of " << ctdl::detail::quote(c.text, 200));
        CHECK(golden_a().decode(c.ids) == c.text);
        ++runs;
    }
    CHECK(runs >= 10);
}

TEST_CASE("bpe_tokenizer: decode(encode(text)) is the text", "[data][bpe]") {
    const bpe_tokenizer& a = golden_a();
    for (const golden_case& c : golden_cases()) {
        if (c.decode_only || c.text.find("<|caf") != std::string::npos || c.text.find("<mask>") != std::string::npos)
            continue;  // byte-level decoding reads <|café|>'s 'é' as a byte; <mask> takes the spaces before it
        INFO(ctdl::detail::quote(c.text, 200));
        CHECK(a.decode(a.encode(c.text)) == c.text);
    }
    const std::string train = read_text(ctdl_test::golden("bpe_train.txt"));
    const std::vector<int> ids = a.encode(train);
    CHECK(a.decode(ids) == train);
    CHECK(ids.size() * 3 < train.size());
}

TEST_CASE("bpe_tokenizer: special tokens are single ids and skip_special_tokens drops them", "[data][bpe]") {
    const bpe_tokenizer& a = golden_a();
    const auto eot = a.token_to_id("<|endoftext|>");
    REQUIRE(eot);
    const std::vector<int> ids = a.encode("one<|endoftext|>two");
    CHECK(std::count(ids.begin(), ids.end(), *eot) == 1);
    CHECK(a.decode(ids) == "one<|endoftext|>two");
    CHECK(a.decode(ids, true) == "onetwo");
    CHECK(a.id_to_token(*eot) == "<|endoftext|>");
}

TEST_CASE("bpe_tokenizer: invalid UTF-8 and out-of-range ids are errors", "[data][bpe]") {
    const bpe_tokenizer& a = golden_a();
    REQUIRE_THROWS_WITH(a.encode("ok\xC3"), Contains("byte offset 2"));
    const std::vector<int> bad{1, 804};
    REQUIRE_THROWS_WITH(a.decode(bad), Contains("token 804 at position 1") && Contains("[0, 804)"));
    const std::vector<int> negative{-1};
    REQUIRE_THROWS_WITH(a.decode(negative), Contains("token -1"));
    REQUIRE_THROWS_AS(a.id_to_token(9999), ctdl::error);
}

TEST_CASE("bpe_tokenizer: to_hf_json writes a file that loads back to the same tokenizer", "[data][bpe]") {
    const ctdl_test::temp_dir dir("ctdl_bpe");
    for (const char* name : {"bpe_tokenizer.json", "bpe_tokenizer_b.json"}) {
        const bpe_tokenizer t = bpe_tokenizer::from_hf_json(ctdl_test::golden(name));
        const auto path = dir.path / "written.json";
        t.to_hf_json(path);
        const bpe_tokenizer back = bpe_tokenizer::from_hf_json(path);
        CHECK(back.vocab_size() == t.vocab_size());
        CHECK(back.merges() == t.merges());
        CHECK(back.to_hf_json_string() == t.to_hf_json_string());
        for (const golden_case& c : golden_cases())
            if (!c.decode_only) CHECK(back.encode(c.text) == t.encode(c.text));
    }
}

TEST_CASE("bpe_tokenizer: a file that ctdl trained and wrote encodes in tokenizers as in ctdl", "[data][bpe]") {
    // bpe_ctdl.json is bpe_ctdl_writer.cpp's output; make_bpe_golden.py read it with tokenizers.
    const std::string text = read_text(ctdl_test::golden("bpe_train.txt"));
    const bpe_tokenizer mine =
        bpe_tokenizer::train(text, 600, {.special_tokens = {"<|endoftext|>"}, .add_prefix_space = true});
    CHECK(mine.to_hf_json_string() == read_text(ctdl_test::golden("bpe_ctdl.json")));
    std::size_t texts = 0;
    for (const golden_case& c : golden_cases()) {
        if (c.decode_only) continue;
        INFO("text: " << ctdl::detail::quote(c.text, 200));
        CHECK(mine.encode(c.text) == c.ids_ctdl);
        ++texts;
    }
    CHECK(texts >= 30);
}

// ---------------------------------------------------------------- refusals

TEST_CASE("bpe_tokenizer: the base file of the refusal tests loads", "[data][bpe]") {
    const bpe_tokenizer t = bpe_tokenizer::from_hf_json_string(base_json);
    CHECK(t.vocab_size() == 6);
    CHECK(t.encode(" ab") == std::vector<int>{4});
    CHECK(t.encode("ab<|endoftext|>") == std::vector<int>{2, 5});
    CHECK(t.encode("abc") == std::vector<int>{2});  // 'c' has no token and there is no unk_token: dropped
    // The older "a b" form of the merges.
    const bpe_tokenizer legacy = bpe_tokenizer::from_hf_json_string(
        replace(base_json, R"([["a", "b"], ["Ġ", "ab"]])", R"(["a b", "Ġ ab"])"));
    CHECK(legacy.encode(" ab") == std::vector<int>{4});
    CHECK(legacy.merges() == t.merges());
    // An unk_token takes the bytes without a token (fused with fuse_unk).
    const std::string with_unk = replace(replace(base_json, R"("unk_token": null)", R"("unk_token": "b")"),
                                         R"("byte_fallback": false)", R"("byte_fallback": false, "fuse_unk": true)");
    CHECK(bpe_tokenizer::from_hf_json_string(with_unk).encode("xyab") == std::vector<int>{1, 2});
}

TEST_CASE("bpe_tokenizer: refuses other models, pre-tokenizers and decoders naming the field", "[data][bpe]") {
    refused(replace(base_json, R"("type": "BPE")", R"("type": "WordPiece")"), "'model.type'");
    refused(replace(base_json, R"("type": "BPE", )", ""), "'model.type' is missing");
    refused(replace(base_json, R"("pre_tokenizer": {"type": "ByteLevel")", R"("pre_tokenizer": {"type": "Metaspace")"),
            "'pre_tokenizer.type'");
    refused(replace(base_json, R"("pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},)", ""),
            "'pre_tokenizer' is missing");
    refused(replace(base_json, R"("add_prefix_space": false, )", ""), "'pre_tokenizer.add_prefix_space' is missing");
    refused(replace(base_json, R"("decoder": {"type": "ByteLevel")", R"("decoder": {"type": "WordPiece")"), "'decoder.type'");
    refused(replace(base_json, R"("decoder": {)", R"("decoder": null, "x": {)"), "'decoder' is not an object");
    refused(replace(base_json, R"("normalizer": null)", R"("normalizer": {"type": "NFC"})"), "'normalizer'");
    refused(replace(base_json, R"("post_processor": null)", R"("post_processor": {"type": "TemplateProcessing"})"),
            "'post_processor.type'");
    refused(replace(base_json, R"("padding": null)", R"("padding": {"length": 8})"), "'padding'");
    refused(replace(base_json, R"("dropout": null)", R"("dropout": 0.1)"), "'model.dropout'");
    refused(replace(base_json, R"("byte_fallback": false)", R"("byte_fallback": true)"), "'model.byte_fallback'");
    refused(replace(base_json, R"("unk_token": null)", R"("unk_token": "<unk>")"), "'model.unk_token'");
    refused(replace(base_json, R"("dropout": null)", R"("dropout": null, "continuing_subword_prefix": "##")"),
            "'model.continuing_subword_prefix'");
}

TEST_CASE("bpe_tokenizer: refuses a bad vocabulary naming the field", "[data][bpe]") {
    refused(replace(base_json, R"("vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4}, )", ""), "'model.vocab' is missing");
    refused(replace(base_json, R"("ab": 2)", R"("ab": 7)"), "'model.vocab[\"ab\"]' is 7, out of range");
    refused(replace(base_json, R"("ab": 2)", R"("ab": 1)"), "duplicate id");
    refused(replace(base_json, R"("ab": 2)", R"("ab": -2)"), "'model.vocab[\"ab\"]' is not a non-negative integer");
    refused(replace(base_json, R"("ab": 2)", R"("ab": 2.5)"), "'model.vocab[\"ab\"]'");
    refused(replace(base_json, R"("ab": 2)", R"("ab": "2")"), "'model.vocab[\"ab\"]'");
    refused(replace(base_json, R"("ab": 2)", R"("ab": 99999999999)"), "out of range");
}

TEST_CASE("bpe_tokenizer: refuses bad merges naming the field", "[data][bpe]") {
    refused(replace(base_json, R"(, "merges": [["a", "b"], ["Ġ", "ab"]])", ""), "'model.merges' is missing");
    refused(replace(base_json, R"("merges": [["a", "b"])", R"("merges": [["a", "z"])"), "'model.merges[0]' \"z\" is not in model.vocab");
    refused(replace(base_json, R"(["Ġ", "ab"])", R"(["b", "a"])"), "'model.merges[1]' \"ba\" is not in model.vocab");
    refused(replace(base_json, R"(["Ġ", "ab"])", R"("Ġ ab c")"), "'model.merges[1]'");
    refused(replace(base_json, R"(["Ġ", "ab"])", R"("Ġab")"), "'model.merges[1]'");
    refused(replace(base_json, R"(["Ġ", "ab"])", R"(["Ġ", "ab", "b"])"), "'model.merges[1]'");
    refused(replace(base_json, R"(["Ġ", "ab"])", "7"), "'model.merges[1]'");
    refused(replace(base_json, R"(["Ġ", "ab"])", R"(["a", "b"])"), "'model.merges[1]' repeats an earlier merge");
    refused(replace(base_json, R"("merges": [)", R"("merges": {"x": [)") + "}", "'model.merges' is not an array");
}

TEST_CASE("bpe_tokenizer: refuses bad added tokens naming the field", "[data][bpe]") {
    refused(replace(base_json, R"({"id": 5,)", R"({"id": 6,)"), "'added_tokens[0].id' is 6, expected 5");
    refused(replace(base_json, R"({"id": 5, "content": "<|endoftext|>")", R"({"id": 5, "content": "ab")"),
            "'added_tokens[0].id' is 5, but model.vocab has \"ab\" as 2");
    refused(replace(base_json, R"("single_word": false)", R"("single_word": true)"), "'added_tokens[0].single_word'");
    refused(replace(base_json, R"("content": "<|endoftext|>")", R"("content": "")"), "'added_tokens[0].content' is empty");
    refused(replace(base_json, R"("content": "<|endoftext|>", )", ""), "'added_tokens[0].content' is missing");
    refused(replace(base_json, R"("lstrip": false)", R"("lstrip": 0)"), "'added_tokens[0].lstrip' is not true or false");
    refused(replace(base_json, R"("added_tokens": [)", R"("added_tokens": [7, )"), "'added_tokens[0]' is not an object");
    refused(replace(base_json, R"("added_tokens": [)", R"("added_tokens": [{"id": 5, "content": "<|endoftext|>"}, )"),
            "'added_tokens[1].content' \"<|endoftext|>\" is added twice");
}

TEST_CASE("bpe_tokenizer: refuses malformed JSON and names the file", "[data][bpe]") {
    refused(base_json.substr(0, base_json.size() / 2), "malformed JSON");
    refused("[1, 2]", "'(top level)' is not a JSON object");
    refused("", "malformed JSON");
    refused(replace(base_json, R"("b": 1)", R"("a": 1)"), "duplicate key");
    const ctdl_test::temp_dir dir("ctdl_bpe");
    const auto path = dir.write("cut.json", base_json.substr(0, 100));
    REQUIRE_THROWS_WITH(bpe_tokenizer::from_hf_json(path), Contains("cut.json") && Contains("malformed JSON"));
    REQUIRE_THROWS_WITH(bpe_tokenizer::from_hf_json(dir.path / "missing.json"), Contains("missing.json"));
}

// ---------------------------------------------------------------- trainer

TEST_CASE("bpe_tokenizer::train: the same vocabulary and merges as tokenizers' BpeTrainer", "[data][bpe]") {
    const std::string text = read_text(ctdl_test::golden("bpe_train.txt"));
    const bpe_tokenizer mine = bpe_tokenizer::train(text, 800, {.special_tokens = {"<|endoftext|>"}, .min_frequency = 2});
    const bpe_tokenizer& theirs = golden_a();
    REQUIRE(mine.vocab_size() == 800);
    for (int id = 0; id < 800; ++id) {
        INFO("id " << id);
        CHECK(mine.id_to_token(id) == theirs.id_to_token(id));
    }
    CHECK(mine.merges() == theirs.merges());
}

TEST_CASE("bpe_tokenizer::train: vocabulary size, round trip, determinism, compression", "[data][bpe]") {
    const std::string text = read_text(ctdl_test::golden("bpe_train.txt"));
    const bpe_tokenizer t = bpe_tokenizer::train(text, 600);
    CHECK(t.vocab_size() == 600);
    CHECK(t.merges().size() == 600 - 256);
    const std::vector<int> ids = t.encode(text);
    CHECK(t.decode(ids) == text);
    CHECK(ids.size() * 2 < text.size());  // fewer tokens than half the bytes
    CHECK(bpe_tokenizer::train(text, 600).to_hf_json_string() == t.to_hf_json_string());

    // More merges compress more; every byte string still round-trips.
    const bpe_tokenizer small = bpe_tokenizer::train(text, 300);
    CHECK(small.encode(text).size() > ids.size());
    const std::string unseen = "Zürich ☃ \t\t ÆØÅ 𝔘 9876";
    CHECK(t.decode(t.encode(unseen)) == unseen);

    // With special tokens and a prefix space; stops when no pair is left.
    const bpe_tokenizer s = bpe_tokenizer::train("ab ab<|endoftext|>ab", 1000,
                                                 {.special_tokens = {"<|endoftext|>"}, .min_frequency = 1, .add_prefix_space = true});
    CHECK(s.vocab_size() == 1 + 256 + 2);  // three " ab": (a, b), then (Ġ, ab), and nothing more
    CHECK(s.encode("ab<|endoftext|>") == std::vector<int>{258, 0});
    CHECK(s.added_tokens().size() == 1);

    REQUIRE_THROWS_WITH(bpe_tokenizer::train(text, 100), Contains("vocab_size 100"));
    REQUIRE_THROWS_WITH(bpe_tokenizer::train("a\xFF", 300), Contains("invalid UTF-8"));
}
