#include <catch2/catch.hpp>
#include <ctdl/data/corpus.hpp>
#include <ctdl/data/prompts.hpp>
#include <ctdl/data/text_dataset.hpp>
#include <ctdl/data/tokenizer.hpp>
#include <ctdl/data/utf8.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <unistd.h>

#include "temp_dir.hpp"

using namespace ctdl::data;
using Catch::Matchers::Contains;

namespace {

using ctdl_test::temp_dir;

std::vector<int> iota_tokens(std::size_t n, int mod = 1 << 30) {
    std::vector<int> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<int>(i) % mod;
    return v;
}

}  // namespace

// ---------------------------------------------------------------- UTF-8

TEST_CASE("utf8: decodes 1- to 4-byte sequences and encodes them back", "[data][utf8]") {
    const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
    const auto cps = utf8_decode(s);
    REQUIRE(cps == std::vector<char32_t>{U'a', 0xE9, 0x20AC, 0x1F600});
    std::string back;
    for (char32_t c : cps) utf8_append(back, c);
    CHECK(back == s);
    CHECK(utf8_invalid_offset(s) == std::string_view::npos);
}

TEST_CASE("utf8: refuses ill-formed input and names the byte offset", "[data][utf8]") {
    const std::vector<std::pair<std::string, std::size_t>> bad = {
        {"ab\x80", 2},                 // stray continuation byte
        {"abc\xC3", 3},                // truncated 2-byte sequence
        {"\xC3\x28", 0},               // missing continuation
        {"x\xC0\xAF", 1},              // overlong '/'
        {"xy\xE0\x80\xAF", 2},         // overlong 3-byte
        {"\xED\xA0\x80", 0},           // surrogate U+D800
        {"ok\xF4\x90\x80\x80", 2},     // U+110000
        {"\xFF", 0},                   // never valid
    };
    for (const auto& [s, offset] : bad) {
        INFO(s);
        CHECK(utf8_invalid_offset(s) == offset);
        CHECK_THROWS_WITH(utf8_decode(s, "input"), Contains("byte offset " + std::to_string(offset)));
    }
    std::string out;
    CHECK_THROWS_AS(utf8_append(out, char32_t{0xD800}), ctdl::error);
    CHECK_THROWS_AS(utf8_append(out, char32_t{0x110000}), ctdl::error);
}

// ---------------------------------------------------------------- byte_tokenizer

TEST_CASE("byte_tokenizer: every byte round-trips", "[data][tokenizer]") {
    static_assert(byte_tokenizer::vocab_size == 256);
    std::string all;
    for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
    const auto ids = byte_tokenizer::encode(all);
    REQUIRE(ids.size() == 256);
    for (int b = 0; b < 256; ++b) CHECK(ids[static_cast<std::size_t>(b)] == b);
    CHECK(byte_tokenizer::decode(ids) == all);

    const std::string utf = "h\xC3\xA9llo \xE2\x82\xAC";
    CHECK(byte_tokenizer::encode(utf).size() == utf.size());
    CHECK(byte_tokenizer::decode(byte_tokenizer::encode(utf)) == utf);

    const std::vector<int> bad{65, 256};
    CHECK_THROWS_WITH(byte_tokenizer::decode(bad), Contains("token 256 at position 1"));
    const std::vector<int> neg{-1};
    CHECK_THROWS_AS(byte_tokenizer::decode(neg), ctdl::error);
}

// ---------------------------------------------------------------- char_tokenizer

TEST_CASE("char_tokenizer: sorted distinct code points, multi-byte round trip", "[data][tokenizer]") {
    const std::string corpus = "b\xC3\xA9" "a\xF0\x9F\x98\x80" "ba\n\xE2\x82\xAC";  // b é a 😀 b a \n €
    const char_tokenizer tok{corpus};
    REQUIRE(tok.vocab_size() == 6);
    CHECK(tok.symbols() == std::vector<char32_t>{U'\n', U'a', U'b', 0xE9, 0x20AC, 0x1F600});
    CHECK(!tok.unk_id());

    const auto ids = tok.encode(corpus);
    CHECK(ids == std::vector<int>{2, 3, 1, 5, 2, 1, 0, 4});
    CHECK(tok.decode(ids) == corpus);
    CHECK(tok.find(U'b') == 2);
    CHECK(!tok.find(U'z'));

    const std::vector<int> out_of_range{0, 6};
    CHECK_THROWS_WITH(tok.decode(out_of_range), Contains("token 6 at position 1"));
}

TEST_CASE("char_tokenizer: invalid UTF-8 and unknown characters are errors", "[data][tokenizer]") {
    CHECK_THROWS_WITH(char_tokenizer{std::string("abc\xE2\x82")}, Contains("byte offset 3"));
    CHECK_THROWS_WITH(char_tokenizer{std::string("")}, Contains("empty"));

    const char_tokenizer tok{"hello world"};
    CHECK_THROWS_WITH(tok.encode("hello w\xC3\xB6rld"), Contains("'\xC3\xB6' (U+00F6)") && Contains("byte offset 7"));
    CHECK_THROWS_WITH(tok.encode("hello\tworld"), Contains("U+0009"));
    CHECK_THROWS_WITH(tok.encode("hel\xFFlo"), Contains("byte offset 3"));
}

TEST_CASE("char_tokenizer: unknown characters map to <unk> when asked", "[data][tokenizer]") {
    const char_tokenizer tok{"abc", char_tokenizer::unknown::map_to_unk};
    REQUIRE(tok.vocab_size() == 4);
    REQUIRE(tok.unk_id() == 3);
    const auto ids = tok.encode("a\xC3\xA9z");
    CHECK(ids == std::vector<int>{0, 3, 3});
    CHECK(tok.decode(ids) == "a\xEF\xBF\xBD\xEF\xBF\xBD");  // U+FFFD twice
}

TEST_CASE("char_tokenizer: to_string / from_string round trip and validation", "[data][tokenizer]") {
    const char_tokenizer tok{"Hello, w\xC3\xB6rld!\n\xF0\x9F\x98\x80"};
    const std::string text = tok.to_string();
    CHECK(text.find('\n') == std::string::npos);
    CHECK(text.starts_with("ctdl.char_tokenizer v1 unk=0 symbols=13 U+000A U+0020 U+0021"));
    CHECK(char_tokenizer::from_string(text) == tok);

    const char_tokenizer unk{"xyz", char_tokenizer::unknown::map_to_unk};
    CHECK(unk.to_string() == "ctdl.char_tokenizer v1 unk=1 symbols=3 U+0078 U+0079 U+007A");
    CHECK(char_tokenizer::from_string(unk.to_string()) == unk);
    CHECK(char_tokenizer::from_string("  ctdl.char_tokenizer   v1\nunk=1 symbols=3\tU+0078 U+0079 U+007A\n") == unk);
    CHECK(char_tokenizer::from_symbols({U'z', U'x', U'y', U'x'}, char_tokenizer::unknown::map_to_unk) == unk);

    const auto fails = [](const std::string& s, const std::string& msg) {
        INFO(s);
        CHECK_THROWS_WITH(char_tokenizer::from_string(s), Contains("from_string") && Contains(msg));
    };
    fails("", "header");
    fails("ctdl.char_tokenizer v2 unk=0 symbols=1 U+0041", "header");
    fails("ctdl.char_tokenizer v1", "'unk=0|1'");
    fails("ctdl.char_tokenizer v1 unk=2 symbols=1 U+0041", "field 'unk'");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=x U+0041", "field 'symbols'");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=0", "at least one");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=2 U+0041", "says 2 code points but 1 follow");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=1 0041", "code point 0");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=1 U+00G1", "hexadecimal");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=1 U+D800", "not a Unicode scalar value");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=1 U+110000", "not a Unicode scalar value");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=2 U+0042 U+0041", "strictly increasing");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=2 U+0041 U+0041", "strictly increasing");
    fails("ctdl.char_tokenizer v1 unk=0 symbols=1 U+FFFFFFFFFFFFFFFFFFFF", "code point 0");
}

// ---------------------------------------------------------------- text_dataset

TEST_CASE("text_dataset: the last fraction is the validation split", "[data][dataset]") {
    const text_dataset ds{iota_tokens(1000), 0.1};
    CHECK(ds.size(split::train) == 900);
    CHECK(ds.size(split::validation) == 100);
    CHECK(ds.tokens(split::train).front() == 0);
    CHECK(ds.tokens(split::train).back() == 899);
    CHECK(ds.tokens(split::validation).front() == 900);
    CHECK(ds.vocab_bound() == 1000);
    CHECK_NOTHROW(ds.require_vocab(1000));
    CHECK_THROWS_WITH(ds.require_vocab(999), Contains("token 999 has id 999") && Contains("vocabulary of 999"));

    CHECK_THROWS_WITH((text_dataset{iota_tokens(4), 0.1}), Contains("0 validation tokens") && Contains("at least one"));
    CHECK_THROWS_WITH((text_dataset{iota_tokens(4), 0.9}), Contains("0 training"));
    CHECK_THROWS_WITH((text_dataset{iota_tokens(10), 0.0}), Contains("(0, 1)"));
    CHECK_THROWS_WITH((text_dataset{iota_tokens(10), 1.0}), Contains("(0, 1)"));
    CHECK_THROWS_WITH((text_dataset{iota_tokens(10), std::nan("")}), Contains("(0, 1)"));
    CHECK_THROWS_WITH((text_dataset{std::vector<int>{}, 0.1}), Contains("at least one"));
    CHECK_THROWS_WITH((text_dataset{std::vector<int>{1, 2, -3, 4, 5}, 0.2}), Contains("token 2 is negative"));
}

TEST_CASE("text_dataset: sample_batch gives y = x shifted by one, inside the split", "[data][dataset]") {
    constexpr std::size_t B = 16, T = 12;
    // Token i = i: a window's content tells where it came from.
    const text_dataset ds{iota_tokens(2000), 0.25};
    ctdl::rng g{ctdl::seed{3}, 1};
    ctdl::tensor<int, ctdl::shape<B, T>> x, y;
    std::set<int> starts;
    for (int round = 0; round < 50; ++round) {
        for (split s : {split::train, split::validation}) {
            ds.sample_batch(s, g, x, y);
            const int lo = s == split::train ? 0 : 1500, hi = s == split::train ? 1500 : 2000;
            for (std::size_t b = 0; b < B; ++b) {
                CHECK(x(b, 0) >= lo);
                CHECK(y(b, T - 1) < hi);  // the target's last token is still inside the split
                for (std::size_t t = 0; t < T; ++t) {
                    CHECK(x(b, t) == x(b, 0) + static_cast<int>(t));  // contiguous
                    CHECK(y(b, t) == x(b, t) + 1);                    // shifted by one
                }
                if (s == split::validation) starts.insert(x(b, 0));
            }
        }
    }
    // Validation offsets 0 .. 500 - T - 1 are all possible; 800 draws should reach both ends' neighbourhoods.
    CHECK(*starts.begin() < 1500 + 20);
    CHECK(*starts.rbegin() > 2000 - static_cast<int>(T) - 1 - 20);
    CHECK(*starts.rbegin() <= 2000 - static_cast<int>(T) - 1);
}

TEST_CASE("text_dataset: sample_batch is a function of the rng state", "[data][dataset]") {
    constexpr std::size_t B = 4, T = 8;
    const text_dataset ds{iota_tokens(5000, 97), 0.1};
    ctdl::rng g{ctdl::seed{11}};
    ctdl::tensor<int, ctdl::shape<B, T>> x1, y1, x2, y2, x3, y3;
    ds.sample_batch(split::train, g, x1, y1);
    const ctdl::rng_state saved = g.state();  // a checkpoint here
    ds.sample_batch(split::train, g, x2, y2);
    ds.sample_batch(split::train, g, x3, y3);

    ctdl::rng resumed{saved};
    ctdl::tensor<int, ctdl::shape<B, T>> a, b;
    ds.sample_batch(split::train, resumed, a, b);
    CHECK(std::equal(a.begin(), a.end(), x2.begin()));
    CHECK(std::equal(b.begin(), b.end(), y2.begin()));
    ds.sample_batch(split::train, resumed, a.view(), b.view());  // the view overload draws the same way
    CHECK(std::equal(a.begin(), a.end(), x3.begin()));
    CHECK(resumed.state() == g.state());
    CHECK(!std::equal(x1.begin(), x1.end(), x2.begin()));

    // Explicit <B, T>, as a caller with the sizes at hand may write it.
    ctdl::rng again{saved};
    ds.sample_batch<B, T>(split::train, again, a, b);
    CHECK(std::equal(a.begin(), a.end(), x2.begin()));
}

TEST_CASE("text_dataset: a split shorter than T + 1 tokens is an error", "[data][dataset]") {
    const text_dataset ds{iota_tokens(100), 0.1};  // 90 + 10 tokens
    ctdl::rng g{ctdl::seed{1}};
    ctdl::tensor<int, ctdl::shape<2, 10>> x, y;
    CHECK_THROWS_WITH(ds.sample_batch(split::validation, g, x, y),
                      Contains("validation split has 10 tokens") && Contains("needs at least 11"));
    ctdl::tensor<int, ctdl::shape<2, 9>> x9, y9;
    CHECK_NOTHROW(ds.sample_batch(split::validation, g, x9, y9));  // exactly T + 1: one possible window
    for (std::size_t b = 0; b < 2; ++b) CHECK(x9(b, 0) == 90);
    CHECK_THROWS_WITH(ds.windows(split::train, 90), Contains("training split has 90 tokens"));
    CHECK_THROWS_WITH(ds.windows(split::train, 0), Contains("at least 1"));
}

TEST_CASE("text_dataset: windows cover the validation split in order", "[data][dataset]") {
    const text_dataset ds{iota_tokens(1000), 0.123};  // validation: tokens 877 .. 999 (123 tokens)
    REQUIRE(ds.size(split::validation) == 123);
    constexpr std::size_t T = 10;
    const auto w = ds.windows(split::validation, T);
    REQUIRE(w.size() == (123 - 1) / T);  // 12
    std::vector<int> targets;
    std::size_t k = 0;
    for (const text_window win : w) {
        CHECK(win.index == k);
        CHECK(win.offset == k * T);
        REQUIRE(win.input.size() == T);
        REQUIRE(win.target.size() == T);
        CHECK(win.input[0] == 877 + static_cast<int>(k * T));
        for (std::size_t t = 0; t < T; ++t) CHECK(win.target[t] == win.input[t] + 1);
        targets.insert(targets.end(), win.target.begin(), win.target.end());
        ++k;
    }
    CHECK(k == w.size());
    // Every token after the first is predicted exactly once, up to a tail shorter than T.
    for (std::size_t i = 0; i < targets.size(); ++i) CHECK(targets[i] == 878 + static_cast<int>(i));
    CHECK(123 - 1 - targets.size() < T);
    CHECK(std::distance(w.begin(), w.end()) == static_cast<std::ptrdiff_t>(w.size()));

    // fill_windows: batches of B windows, the last one partial and zero-padded.
    constexpr std::size_t B = 5;
    ctdl::tensor<int, ctdl::shape<B, T>> x, y;
    std::size_t seen = 0;
    for (std::size_t first = 0; first < w.size(); first += B) {
        const std::size_t n = ds.fill_windows(split::validation, first, x, y);
        CHECK(n == std::min(B, w.size() - first));
        for (std::size_t b = 0; b < B; ++b)
            for (std::size_t t = 0; t < T; ++t) {
                if (b < n) {
                    CHECK(x(b, t) == w[first + b].input[t]);
                    CHECK(y(b, t) == w[first + b].target[t]);
                } else {
                    CHECK(x(b, t) == 0);
                    CHECK(y(b, t) == 0);
                }
            }
        seen += n;
    }
    CHECK(seen == w.size());
    CHECK(ds.fill_windows(split::validation, w.size(), x, y) == 0);
}

TEST_CASE("text_dataset: unigram entropy in nats", "[data][dataset]") {
    // Training split: two symbols, equally often -> ln 2. Validation: one symbol -> 0.
    std::vector<int> t{0, 1, 0, 1, 0, 1, 0, 1, 5, 5};
    const text_dataset ds{t, 0.2};
    CHECK(ds.unigram_entropy(split::train) == Approx(std::log(2.0)));
    CHECK(ds.unigram_entropy(split::validation) == Approx(0.0).margin(1e-15));
    // Uniform over 8 symbols -> ln 8.
    const text_dataset u{iota_tokens(800, 8), 0.5};
    CHECK(u.unigram_entropy(split::train) == Approx(std::log(8.0)));
}

// ---------------------------------------------------------------- corpus

TEST_CASE("default_corpus: deterministic, exact size, prefix-stable, ASCII", "[data][corpus]") {
    const std::string a = default_corpus(50'000);
    CHECK(a.size() == 50'000);
    CHECK(a == default_corpus(50'000));
    CHECK(default_corpus(120'000).starts_with(a));
    CHECK(default_corpus(50'000, 7) != a);
    CHECK(default_corpus(0).empty());
    for (char c : a) {
        const auto u = static_cast<unsigned char>(c);
        REQUIRE((u == '\n' || (u >= 0x20 && u < 0x7F)));
    }
    CHECK(a.find("\n\n") != std::string::npos);  // blank lines between stories
    CHECK(a.find("The end.") != std::string::npos);
    CHECK(default_corpus().size() == 200'000);
}

TEST_CASE("default_corpus: has structure a model can learn", "[data][corpus]") {
    const std::string text = default_corpus();
    const char_tokenizer tok{text};
    const text_dataset ds{tok.encode(text), 0.1};
    const double v = static_cast<double>(tok.vocab_size());
    CHECK(tok.vocab_size() >= 30);
    CHECK(tok.vocab_size() <= 80);
    // English-like letter frequencies: about 3 nats, well under the uniform ln V.
    const double h1 = ds.unigram_entropy(split::train);
    CHECK(h1 > 2.5);
    CHECK(h1 < 3.4);
    CHECK(h1 < std::log(v) - 0.5);
    CHECK(std::abs(ds.unigram_entropy(split::validation) - h1) < 0.1);  // both splits look alike

    // Context helps: the entropy of the next character given the previous one is far
    // below the unigram entropy.
    const auto s = ds.tokens(split::train);
    std::map<std::pair<int, int>, double> pair_count;
    std::map<int, double> first_count;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) ++pair_count[{s[i], s[i + 1]}], ++first_count[s[i]];
    double h2 = 0;
    const double n = static_cast<double>(s.size() - 1);
    for (const auto& [k, c] : pair_count) h2 -= c / n * std::log(c / first_count[k.first]);
    CHECK(h2 < h1 - 0.7);

    // Agreement: the grammar never writes "a" before a vowel-initial word or "an" before a consonant.
    for (const char* wrong : {" a apple", " a umbrella", " a orange", " a old", " an red", " an cat", "The foxs", "two mouses"})
        CHECK(text.find(wrong) == std::string::npos);
    CHECK(text.find(" an apple") != std::string::npos);
    CHECK(text.find(" were ") != std::string::npos);
    CHECK(text.find(" mice") != std::string::npos);
}

// ---------------------------------------------------------------- read_text_file

TEST_CASE("read_text_file: reads UTF-8, refuses missing, empty and invalid files", "[data][corpus]") {
    const temp_dir dir;
    const auto good = dir.write("good.txt", "Gr\xC3\xBC\xC3\x9F" "e\n");
    CHECK(read_text_file(good) == "Gr\xC3\xBC\xC3\x9F" "e\n");
    CHECK(read_text_file(dir.write("bom.txt", "\xEF\xBB\xBFhi")) == "hi");

    const auto missing = dir.path / "missing.txt";
    CHECK_THROWS_WITH(read_text_file(missing), Contains(missing.string()));
    const auto empty = dir.write("empty.txt", "");
    CHECK_THROWS_WITH(read_text_file(empty), Contains(empty.string()) && Contains("empty"));
    CHECK_THROWS_WITH(read_text_file(dir.write("bom_only.txt", "\xEF\xBB\xBF")), Contains("empty"));
    const auto bad = dir.write("latin1.txt", "caf\xE9 au lait");
    CHECK_THROWS_WITH(read_text_file(bad), Contains(bad.string()) && Contains("byte offset 3"));
    CHECK_THROWS_WITH(read_text_file(dir.path), Contains("directory"));
}

TEST_CASE("spread_prompts: every prompt lies inside the sequence, at any length", "[data][prompts]") {
    // The pretrain example's old choice, offset 2 · (n / 3) with 64 tokens, ran past the end
    // of a validation split of fewer than 192 tokens.
    CHECK(spread_prompts(0, 3, 64).empty());
    CHECK(spread_prompts(100, 0, 64).empty());
    CHECK(spread_prompts(100, 3, 0).empty());
    CHECK(spread_prompts(1, 3, 64) == std::vector<token_range>{{0, 1}, {0, 1}, {0, 1}});
    CHECK(spread_prompts(64, 3, 64) == std::vector<token_range>{{0, 64}, {0, 64}, {0, 64}});
    CHECK(spread_prompts(100, 3, 64) == std::vector<token_range>{{0, 64}, {33, 64}, {36, 64}});
    CHECK(spread_prompts(191, 3, 64) == std::vector<token_range>{{0, 64}, {63, 64}, {126, 64}});
    CHECK(spread_prompts(192, 3, 64) == std::vector<token_range>{{0, 64}, {64, 64}, {128, 64}});
    CHECK(spread_prompts(20000, 3, 64) == std::vector<token_range>{{0, 64}, {6666, 64}, {13332, 64}});
    for (std::size_t n = 0; n <= 400; ++n)
        for (std::size_t count = 1; count <= 5; ++count)
            for (std::size_t max_length : {1u, 7u, 64u, 500u}) {
                const auto r = spread_prompts(n, count, max_length);
                INFO("n " << n << ", count " << count << ", max_length " << max_length);
                REQUIRE(r.size() == (n ? count : 0));
                for (std::size_t i = 0; i < r.size(); ++i) {
                    CHECK(r[i].length == std::min(n, max_length));
                    CHECK(r[i].offset + r[i].length <= n);
                    if (i) CHECK(r[i].offset >= r[i - 1].offset);
                    if (i && n >= count * max_length) CHECK(r[i].offset >= r[i - 1].offset + r[i - 1].length);
                }
                if (!r.empty()) CHECK(r[0].offset == 0);
            }
}
