// Supervised fine-tuning: prompt/response JSON lines (good files, each malformed line
// refused with its line number), sft_dataset's rows and masks (padded, packed, truncated,
// refused), the mask proof (prompt targets contribute nothing to the loss or to any
// gradient), and train::run on an sft_dataset (the loss falls, validation counts response
// targets only, checkpoints resume bitwise).
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "temp_dir.hpp"

namespace data = ctdl::data;
using Catch::Matchers::Contains;
using data::split;

namespace {

// ---------------------------------------------------------------- helpers

/// The symbols of the test task: digits, '+', '=', a space, and '#' as the end token.
const data::char_tokenizer& digits_tokenizer() {
    static const data::char_tokenizer tok("0123456789+= #");
    return tok;
}
int id_of(char c) { return *digits_tokenizer().find(static_cast<char32_t>(c)); }

/// "0011..." for a row of the mask.
std::string mask_string(std::span<const float> m) {
    std::string s;
    for (const float w : m) s += w == 1.0f ? '1' : (w == 0.0f ? '0' : '?');
    return s;
}

/// JSON lines of "a+b=" -> "a+b" for count pairs drawn from seed.
std::string sums_jsonl(std::size_t count, std::uint64_t seed) {
    ctdl::rng g{ctdl::seed{seed}};
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        const auto a = g.next_below(10), b = g.next_below(10);
        out += "{\"prompt\": \"" + std::to_string(a) + "+" + std::to_string(b) + "=\", \"response\": \"" +
               std::to_string(a + b) + "\"}\n";
    }
    return out;
}

data::sft_dataset sums_dataset(std::size_t context, data::sft_layout layout, std::size_t count = 400) {
    const auto pairs = data::parse_prompt_responses(sums_jsonl(count, 11), "sums");
    return data::sft_dataset(pairs, digits_tokenizer(),
                             {.context = context, .validation_fraction = 0.1, .layout = layout,
                              .end_token = id_of('#')});
}

/// Every bit of a float buffer.
std::vector<std::uint32_t> bits(const float* p, std::size_t n) {
    std::vector<std::uint32_t> b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = std::bit_cast<std::uint32_t>(p[i]);
    return b;
}

using tiny = ctdl::models::gpt<16, 16, 32, 2, 2, 64>;
constexpr std::size_t B = 4, T = 16;

ctdl::train::options quiet(std::uint64_t steps) {
    ctdl::train::options o;
    o.steps = steps;
    o.peak_lr = 3e-3;
    o.warmup_steps = 5;
    o.eval_every = 0;
    o.eval_batches = 4;
    o.progress = false;
    return o;
}

}  // namespace

// ---------------------------------------------------------------- JSON lines

TEST_CASE("prompt/response JSON lines: a good file, from a path, a stream and a string", "[sft]") {
    // LF and CRLF endings, a blank line, a line of spaces, escapes, non-ASCII text, an
    // extra member, a BOM, empty strings, no newline at the end
    const std::string text = "\xEF\xBB\xBF{\"prompt\": \"2+3=\", \"response\": \"5\"}\r\n"
                             "\n"
                             "   \t \r\n"
                             "{\"response\": \"line\\none \\\"q\\\" \\u00e9\", \"prompt\": \"caf\xC3\xA9\", "
                             "\"id\": [1, {\"x\": null}]}\n"
                             "  {\"prompt\": \"\", \"response\": \"\"}  ";
    const std::vector<data::prompt_response> expected{
        {"2+3=", "5", 1}, {"caf\xC3\xA9", "line\none \"q\" \xC3\xA9", 4}, {"", "", 5}};
    CHECK(data::parse_prompt_responses(text, "inline") == expected);

    const ctdl_test::temp_dir dir("ctdl_sft_jsonl");
    CHECK(data::read_prompt_responses(dir.write("pairs.jsonl", text)) == expected);
    std::istringstream in(text);
    CHECK(data::read_prompt_responses(in, "a stream") == expected);

    // a file without the BOM and with LF only reads the same
    std::string lf = text.substr(3);
    lf.erase(std::remove(lf.begin(), lf.end(), '\r'), lf.end());
    CHECK(data::parse_prompt_responses(lf) == expected);

    // extra members refused on request, naming the member and the line
    CHECK_THROWS_WITH(data::parse_prompt_responses(text, "strict", {.allow_extra_members = false}),
                      Contains("'strict' line 4") && Contains("\"id\"") && Contains("extra members are refused"));
}

TEST_CASE("prompt/response JSON lines: each malformed line is refused with its line number and what is wrong",
          "[sft]") {
    const std::string good = "{\"prompt\": \"a\", \"response\": \"b\"}\n";
    struct bad_case {
        std::string line;
        std::vector<std::string> says;
    };
    const std::vector<bad_case> cases{
        {"{\"prompt\": \"a\", \"response\": \"b\"",
         {"malformed JSON at column 32", "unexpected end of text, expected ',' or '}'"}},
        {"{\"prompt\": \"a\" \"response\": \"b\"}", {"malformed JSON at column 16"}},
        {"{\"prompt\": \"a\", \"response\": \"b\",}", {"malformed JSON", "object key"}},
        {"{\"prompt\": 'a', \"response\": \"b\"}", {"malformed JSON at column 12", "expected a value"}},
        {"{\"prompt\": \"a\", \"response\": \"b\"} {}", {"malformed JSON", "after the JSON value"}},
        {"{\"prompt\": \"a\xFF\", \"response\": \"b\"}", {"malformed JSON", "UTF-8"}},
        {"{\"prompt\": \"tab\there\", \"response\": \"b\"}", {"malformed JSON", "control character"}},
        {"{\"prompt\": \"a\", \"prompt\": \"c\", \"response\": \"b\"}", {"malformed JSON", "duplicate key \"prompt\""}},
        {"[\"a\", \"b\"]", {"expected a JSON object", "found an array"}},
        {"\"a\"", {"expected a JSON object", "found a string"}},
        {"{\"response\": \"b\"}", {"no \"prompt\" member"}},
        {"{\"prompt\": \"a\"}", {"no \"response\" member"}},
        {"{\"Prompt\": \"a\", \"response\": \"b\"}", {"no \"prompt\" member"}},
        {"{\"prompt\": 7, \"response\": \"b\"}", {"\"prompt\" is a number, expected a string"}},
        {"{\"prompt\": \"a\", \"response\": null}", {"\"response\" is null, expected a string"}},
        {"{\"prompt\": [\"a\"], \"response\": \"b\"}", {"\"prompt\" is an array, expected a string"}},
        {"{\"prompt\": \"a\", \"response\": {\"text\": \"b\"}}", {"\"response\" is an object, expected a string"}},
    };
    for (const auto& c : cases) {
        INFO(c.line);
        // the bad line is line 4: after a good line, a blank line (counted) and a good CRLF line
        const std::string text = good + "\n" + "{\"prompt\": \"c\", \"response\": \"d\"}\r\n" + c.line + "\n" + good;
        std::vector<data::prompt_response> kept{{"x", "y", 9}};
        try {
            kept = data::parse_prompt_responses(text, "bad.jsonl");
            FAIL("accepted");
        } catch (const ctdl::error& e) {
            const std::string what = e.what();
            INFO(what);
            CHECK_THAT(what, Contains("'bad.jsonl' line 4: "));
            for (const auto& s : c.says) CHECK_THAT(what, Contains(s));
        }
        CHECK(kept == std::vector<data::prompt_response>{{"x", "y", 9}});  // the caller's data as it was
    }
    // the line number counts CRLF lines and blank lines alike, and the first line is 1
    CHECK_THROWS_WITH(data::parse_prompt_responses("{}\n" + good), Contains("line 1: no \"prompt\""));
    CHECK_THROWS_WITH(data::parse_prompt_responses("\r\n\r\n\r\n{\"prompt\": 1}"),
                      Contains("line 4: \"prompt\" is a number"));
}

TEST_CASE("prompt/response JSON lines: an empty or missing source is refused", "[sft]") {
    CHECK_THROWS_WITH(data::parse_prompt_responses("", "e.jsonl"),
                      Contains("'e.jsonl' holds no prompt/response pair") && Contains("it is empty"));
    CHECK_THROWS_WITH(data::parse_prompt_responses("\n  \r\n\t\n", "b.jsonl"),
                      Contains("'b.jsonl' holds no prompt/response pair") && Contains("blank"));
    CHECK_THROWS_WITH(data::parse_prompt_responses("\xEF\xBB\xBF"), Contains("it is empty"));
    const ctdl_test::temp_dir dir("ctdl_sft_missing");
    CHECK_THROWS_WITH(data::read_prompt_responses(dir.path / "none.jsonl"), Contains("none.jsonl"));
    CHECK_THROWS_WITH(data::read_prompt_responses(dir.path), Contains("directory"));
}

// ---------------------------------------------------------------- sft_dataset

TEST_CASE("sft_dataset: padded rows, with the mask exactly on the response targets", "[sft]") {
    const auto& tok = digits_tokenizer();
    const auto pairs = data::parse_prompt_responses(
        "{\"prompt\": \"12+3=\", \"response\": \"15\"}\n"
        "{\"prompt\": \"1+1=\", \"response\": \"\"}\n"
        "{\"prompt\": \"9=\", \"response\": \"9 9\"}\n");
    const std::span all(pairs);
    SECTION("with an end token") {
        const data::sft_dataset ds(all.first(2), all.subspan(2), tok,
                                   {.context = 8, .end_token = id_of('#')});
        REQUIRE(ds.rows(split::train) == 2);
        REQUIRE(ds.rows(split::validation) == 1);
        CHECK(ds.examples(split::train) == 2);
        CHECK(ds.end_token() == id_of('#'));
        // row 0: stream "12+3=15#" + one pad (id 0, the pad_token default, is ' ' here)
        const auto r0 = ds.row(split::train, 0);
        CHECK(tok.decode(r0.input) == "12+3=15#");
        CHECK(tok.decode(r0.target) == "2+3=15# ");
        CHECK(mask_string(r0.mask) == "00001110");  // targets '1', '5', '#'
        // an empty response still teaches the end token
        const auto r1 = ds.row(split::train, 1);
        CHECK(tok.decode(r1.input) == "1+1=#   ");
        CHECK(mask_string(r1.mask) == "00010000");
        const auto v0 = ds.row(split::validation, 0);
        CHECK(tok.decode(v0.input) == "9=9 9#  ");
        CHECK(mask_string(v0.mask) == "01111000");
        CHECK(ds.response_tokens(split::train) == 4);
        CHECK(ds.response_tokens(split::validation) == 4);
        CHECK(ds.truncated(split::train) == 0);
        CHECK(ds.vocab_bound() == static_cast<std::size_t>(id_of('=')) + 1);  // '=' has the largest id
        CHECK_NOTHROW(ds.require_vocab(tok.vocab_size()));
        CHECK_THROWS_WITH(ds.require_vocab(4), Contains("token id 13 is outside a vocabulary of 4"));
        CHECK_THROWS_WITH(ds.require_window(split::train, 16), Contains("context of 8 tokens, not 16"));
        CHECK_THROWS_WITH(ds.row(split::validation, 1), Contains("no row 1 in the validation split, which has 1 rows"));
    }
    SECTION("without an end token, and another pad token") {
        const data::sft_dataset ds(all.first(1), all.subspan(2), tok,
                                   {.context = 8, .pad_token = id_of('0')});
        CHECK(!ds.end_token());  // a char tokenizer has no end-of-text token
        const auto r0 = ds.row(split::train, 0);
        CHECK(tok.decode(r0.input) == "12+3=150");
        CHECK(tok.decode(r0.target) == "2+3=1500");
        CHECK(mask_string(r0.mask) == "00001100");
        // an empty response without an end token is nothing to learn: refused, naming its line
        CHECK_THROWS_WITH(data::sft_dataset(pairs, tok, {.context = 8, .validation_fraction = 0.4}),
                          Contains("line 2") && Contains("no response token"));
    }
    SECTION("append_end_token = false appends none, whatever end_token says") {
        const data::sft_dataset ds(all.first(1), all.subspan(2), tok,
                                   {.context = 8, .append_end_token = false, .end_token = id_of('#')});
        CHECK(!ds.end_token());
        CHECK(mask_string(ds.row(split::train, 0).mask) == "00001100");
    }
}

TEST_CASE("sft_dataset: packed rows hold whole examples in order, each response masked in", "[sft]") {
    const auto& tok = digits_tokenizer();
    const auto pairs = data::parse_prompt_responses(
        "{\"prompt\": \"1+2=\", \"response\": \"3\"}\n"      // 6 tokens with '#'
        "{\"prompt\": \"4=\", \"response\": \"4\"}\n"        // 4
        "{\"prompt\": \"5+5=\", \"response\": \"10\"}\n"     // 7: does not fit after 10 of 11
        "{\"prompt\": \"0=\", \"response\": \"0\"}\n");      // 4
    const std::span all(pairs);
    const data::sft_dataset ds(all.first(3), all.subspan(3), tok,
                               {.context = 10, .layout = data::sft_layout::packed, .end_token = id_of('#')});
    REQUIRE(ds.rows(split::train) == 2);
    CHECK(ds.layout() == data::sft_layout::packed);
    const auto r0 = ds.row(split::train, 0);
    CHECK(tok.decode(r0.input) == "1+2=3#4=4#");
    CHECK(tok.decode(r0.target) == "+2=3#4=4# ");
    // '3', '#' of the first; the target after its '#' is the next prompt's '4': masked out
    CHECK(mask_string(r0.mask) == "0001100110");
    const auto r1 = ds.row(split::train, 1);
    CHECK(tok.decode(r1.input) == "5+5=10#   ");
    CHECK(mask_string(r1.mask) == "0001110000");
    CHECK(ds.response_tokens(split::train) == 7);
    CHECK(ds.rows(split::validation) == 1);
    CHECK(mask_string(ds.row(split::validation, 0).mask) == "0110000000");
}

TEST_CASE("sft_dataset: a long example is truncated or refused, a long or empty prompt refused", "[sft]") {
    const auto& tok = digits_tokenizer();
    const auto pairs = data::parse_prompt_responses(
        "{\"prompt\": \"1+2=\", \"response\": \"3\"}\n"
        "{\"prompt\": \"11+22=\", \"response\": \"33333\"}\n");  // 12 tokens with '#'
    const std::span all(pairs);
    const data::sft_dataset cut(all.subspan(1), all.first(1), tok, {.context = 8, .end_token = id_of('#')});
    const auto r = cut.row(split::train, 0);
    CHECK(tok.decode(r.input) == "11+22=33");  // the first T + 1 tokens: the response's tail and '#' cut
    CHECK(tok.decode(r.target) == "1+22=333");
    CHECK(mask_string(r.mask) == "00000111");
    CHECK(cut.truncated(split::train) == 1);
    CHECK(cut.truncated(split::validation) == 0);

    CHECK_THROWS_WITH(data::sft_dataset(all.subspan(1), all.first(1), tok,
                                        {.context = 8, .overflow = data::too_long::refuse, .end_token = id_of('#')}),
                      Contains("line 2 has 12 tokens (prompt 6)") && Contains("too_long::refuse"));
    // a prompt of T tokens leaves one response target; one more leaves none
    const data::sft_dataset edge(all.subspan(1), all.first(1), tok, {.context = 6, .end_token = id_of('#')});
    CHECK(mask_string(edge.row(split::train, 0).mask) == "000001");
    CHECK_THROWS_WITH(data::sft_dataset(all.subspan(1), all.first(1), tok, {.context = 5}),
                      Contains("line 2 has a prompt of 6 tokens, more than the context of 5"));
    const std::vector<data::prompt_response> empty_prompt{{"", "1", 7}};
    CHECK_THROWS_WITH(data::sft_dataset(empty_prompt, all, tok, {.context = 8}),
                      Contains("line 7 has an empty prompt"));
    // characters outside the tokenizer's vocabulary: its own error
    const std::vector<data::prompt_response> unknown{{"a+b=", "c", 3}};
    CHECK_THROWS_WITH(data::sft_dataset(unknown, all, tok, {.context = 8}), Contains("not in the vocabulary"));
    // options and splits
    CHECK_THROWS_WITH(data::sft_dataset(pairs, tok, {}), Contains("context"));
    CHECK_THROWS_WITH(data::sft_dataset(pairs, tok, {.context = 8, .validation_fraction = 0.1}),
                      Contains("2 pairs leaves 2 training and 0 validation"));
    CHECK_THROWS_WITH(data::sft_dataset(pairs, tok, {.context = 8, .validation_fraction = 1.0}),
                      Contains("validation_fraction must be in (0, 1)"));
    CHECK_THROWS_WITH(data::sft_dataset(all, all.first(0), tok, {.context = 8}),
                      Contains("validation split has no pair"));
    CHECK_THROWS_WITH(data::sft_dataset(pairs, tok, {.context = 8, .validation_fraction = 0.5, .pad_token = -1}),
                      Contains("pad_token is negative"));
}

TEST_CASE("sft_dataset: the split, and batches drawn from the rng state alone", "[sft]") {
    const auto ds = sums_dataset(T, data::sft_layout::padded, 50);
    CHECK(ds.examples(split::train) == 45);
    CHECK(ds.examples(split::validation) == 5);
    CHECK(ds.rows(split::train) == 45);
    ctdl::tensor<int, ctdl::shape<B, T>> x, y, x2, y2;
    ctdl::tensor<float, ctdl::shape<B, T>> m, m2;
    ctdl::rng g{ctdl::seed{4}}, h{ctdl::seed{4}};
    ds.sample_batch(split::train, g, x, y, m);
    ds.sample_batch(split::train, h, x2, y2, m2);
    CHECK(g.state() == h.state());
    CHECK(std::equal(x.data(), x.data() + B * T, x2.data()));
    CHECK(std::equal(m.data(), m.data() + B * T, m2.data()));
    // each batch row is one of the split's rows, with its own targets and mask
    for (std::size_t b = 0; b < B; ++b) {
        bool found = false;
        for (std::size_t i = 0; i < ds.rows(split::train) && !found; ++i) {
            const auto r = ds.row(split::train, i);
            found = std::equal(r.input.begin(), r.input.end(), x.data() + b * T) &&
                    std::equal(r.target.begin(), r.target.end(), y.data() + b * T) &&
                    std::equal(r.mask.begin(), r.mask.end(), m.data() + b * T);
        }
        CHECK(found);
    }
    // fill_rows: the last rows in order, then padding with mask 0
    CHECK(ds.fill_rows(split::validation, 3, x, y, m) == 2);
    const auto v4 = ds.row(split::validation, 4);
    CHECK(std::equal(v4.input.begin(), v4.input.end(), x.data() + T));
    CHECK(std::all_of(m.data() + 2 * T, m.data() + B * T, [](float w) { return w == 0.0f; }));
    CHECK(std::all_of(x.data() + 2 * T, x.data() + B * T, [&](int t) { return t == ds.pad_token(); }));
    CHECK(ds.fill_rows(split::validation, 5, x, y, m) == 0);
}

TEST_CASE("sft_dataset: a BPE tokenizer's <|endoftext|> ends each response by default", "[sft]") {
    const std::string corpus = sums_jsonl(200, 3);
    const auto bpe = data::bpe_tokenizer::train(corpus, 300, {.special_tokens = {"<|endoftext|>"}});
    const auto eot = bpe.token_to_id("<|endoftext|>");
    REQUIRE(eot);
    CHECK(data::end_of_text_id(bpe) == eot);
    CHECK(!data::end_of_text_id(digits_tokenizer()));
    CHECK(!data::end_of_text_id(data::byte_tokenizer{}));
    const auto pairs = data::parse_prompt_responses(sums_jsonl(20, 5));
    const data::sft_dataset ds(pairs, bpe, {.context = 12, .validation_fraction = 0.25});
    REQUIRE(ds.end_token() == eot);
    for (const split s : {split::train, split::validation})
        for (std::size_t i = 0; i < ds.rows(s); ++i) {
            const auto r = ds.row(s, i);
            // the last counted target is the end token, and the counted targets decode to the response
            std::vector<int> counted;
            for (std::size_t t = 0; t < r.mask.size(); ++t)
                if (r.mask[t] == 1.0f) counted.push_back(r.target[t]);
            REQUIRE(!counted.empty());
            CHECK(counted.back() == *eot);
            const std::size_t example = (s == split::train ? 0 : ds.examples(split::train)) + i;
            CHECK(bpe.decode(counted) == pairs[example].response + "<|endoftext|>");
        }
    // a byte tokenizer works too, without an end token
    const data::sft_dataset bytes(pairs, data::byte_tokenizer{}, {.context = 12, .validation_fraction = 0.25});
    CHECK(!bytes.end_token());
    CHECK(bytes.vocab_bound() <= 256);
}

// ---------------------------------------------------------------- the mask proof

TEST_CASE("SFT mask: prompt and padding targets contribute nothing to the loss or to any gradient", "[sft]") {
    const auto ds = sums_dataset(T, data::sft_layout::packed, 60);
    ctdl::model<tiny> net{ctdl::seed{2}};
    ctdl::tensor<int, ctdl::shape<B, T>> x, y;
    ctdl::tensor<float, ctdl::shape<B, T>> mask;
    ctdl::rng g{ctdl::seed{6}};
    ds.sample_batch(split::train, g, x, y, mask);
    auto& acts = net.activations_for<ctdl::shape<B, T>, int>();
    // loss and every parameter gradient for targets y, with the mask or with every target counted
    const auto loss_and_gradients = [&](const auto& targets, bool masked) {
        const auto& logits = net.forward(x, acts);
        const float l = masked ? ctdl::loss::cross_entropy.forward_backward(logits, targets, mask, acts.dout)
                               : ctdl::loss::cross_entropy.forward_backward(logits, targets, acts.dout);
        net.backward(acts, x, acts.dout);
        std::vector<std::uint32_t> out = bits(net.gradients(), net.gradient_count);
        out.push_back(std::bit_cast<std::uint32_t>(l));
        return out;
    };
    const auto base = loss_and_gradients(y, true);

    std::size_t prompt_targets = 0;
    for (std::size_t i = 0; i < B * T; ++i) prompt_targets += mask.data()[i] == 0.0f;
    REQUIRE(prompt_targets > 0);
    REQUIRE(prompt_targets < B * T);
    // every target outside the response changed: the loss and every gradient the same bits
    ctdl::tensor<int, ctdl::shape<B, T>> other = y;
    for (std::size_t i = 0; i < B * T; ++i)
        if (mask.data()[i] == 0.0f) other.data()[i] = (y.data()[i] + 1 + static_cast<int>(i % 7)) % 14;
    CHECK(loss_and_gradients(other, true) == base);
    // ... and counted without the mask, the same change does change them (the test can fail)
    CHECK(loss_and_gradients(other, false) != loss_and_gradients(y, false));

    // one response target changed: the loss and the gradients differ
    std::size_t k = 0;
    while (mask.data()[k] != 1.0f) ++k;
    ctdl::tensor<int, ctdl::shape<B, T>> moved = y;
    moved.data()[k] = (y.data()[k] + 1) % 14;
    const auto changed = loss_and_gradients(moved, true);
    CHECK(changed.back() != base.back());
    CHECK(!std::equal(changed.begin(), changed.end() - 1, base.begin()));

    // the masked loss is the mean over the response targets of their own losses (rows of
    // one target each, computed apart)
    const auto logits = net.forward(x);
    double sum = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < B * T; ++i) {
        if (mask.data()[i] == 0.0f) continue;
        ctdl::tensor<float, ctdl::shape<1, 16>> row;
        std::copy_n(logits.data() + i * 16, 16, row.data());
        ctdl::tensor<int, ctdl::shape<1>> t;
        t.data()[0] = y.data()[i];
        sum += static_cast<double>(ctdl::loss::cross_entropy(row, t));
        ++n;
    }
    CHECK(static_cast<double>(std::bit_cast<float>(base.back())) == Approx(sum / static_cast<double>(n)).epsilon(1e-6));
}

// ---------------------------------------------------------------- the training loop

TEST_CASE("SFT with train::run: the masked loss falls, and validation counts response targets only", "[sft]") {
    const auto ds = sums_dataset(T, data::sft_layout::packed);
    ds.require_vocab(16);
    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.weight_decay = 0.01f}};
    const double before = ctdl::train::validation_loss<B, T>(net, ds, 100);

    // the first step's reported loss is the masked loss of the batch the rng draws first
    ctdl::rng g{ctdl::seed{9}};
    {
        ctdl::rng copy = g;
        ctdl::tensor<int, ctdl::shape<B, T>> x, y;
        ctdl::tensor<float, ctdl::shape<B, T>> m;
        ds.sample_batch(split::train, copy, x, y, m);
        const double first = static_cast<double>(ctdl::loss::cross_entropy(net.forward(x), y, m));
        auto o = quiet(1);
        o.eval_batches = 100;  // every validation row
        o.peak_lr = 0;  // one step that changes nothing but the step count
        o.min_lr = 0;
        o.clip_norm = 0;
        ctdl::model<tiny> probe{ctdl::seed{1}};
        ctdl::optim::adamw popt{probe, {}};
        ctdl::rng pg = g;
        const auto r = ctdl::train::run<B, T>(probe, popt, ds, pg, o);
        CHECK(r.train_loss == first);
        CHECK(pg.state() == copy.state());
        CHECK(*r.validation_loss == Approx(before).epsilon(1e-6));
    }

    const ctdl_test::temp_dir dir("ctdl_sft_run");
    auto o = quiet(120);
    o.eval_every = 40;
    o.eval_batches = 100;  // every validation row
    o.grad_accumulation = 2;
    o.csv = dir.path / "log.csv";
    o.plot = dir.path / "loss.svg";
    const auto r = ctdl::train::run<B, T>(net, opt, ds, g, o);
    REQUIRE(r.validation_loss);
    CHECK(r.validation_curve.size() == 3);
    INFO("masked validation loss before " << before << ", after " << *r.validation_loss);
    CHECK(*r.validation_loss < 0.6 * before);
    CHECK(r.train_curve.back().loss < r.train_curve.front().loss);
    CHECK(std::filesystem::file_size(o.csv) > 0);
    CHECK(std::filesystem::file_size(o.plot) > 0);

    // validation = Σ over the rows' response targets / their count: rows evaluated one at a time
    double weighted = 0, weight = 0;
    for (std::size_t i = 0; i < ds.rows(split::validation); ++i) {
        const auto row = ds.row(split::validation, i);
        ctdl::tensor<int, ctdl::shape<1, T>> x, y;
        ctdl::tensor<float, ctdl::shape<1, T>> m;
        std::copy(row.input.begin(), row.input.end(), x.data());
        std::copy(row.target.begin(), row.target.end(), y.data());
        std::copy(row.mask.begin(), row.mask.end(), m.data());
        const double w = std::count(row.mask.begin(), row.mask.end(), 1.0f);
        weighted += w * static_cast<double>(ctdl::loss::cross_entropy(net.forward(x), y, m));
        weight += w;
    }
    CHECK(weight == static_cast<double>(ds.response_tokens(split::validation)));
    CHECK(*r.validation_loss == Approx(weighted / weight).epsilon(1e-5));
    CHECK(ctdl::train::validation_loss<3, T>(net, ds, 1000) == Approx(weighted / weight).epsilon(1e-5));
    CHECK_THROWS_WITH((ctdl::train::validation_loss<B, T>(net, ds, 0)), Contains("at least 1"));
}

TEST_CASE("SFT with train::run: resuming from a checkpoint continues bitwise identically", "[sft]") {
    const ctdl_test::temp_dir dir("ctdl_sft_resume");
    const auto path = dir.path / "sft.safetensors";
    for (const auto layout : {data::sft_layout::padded, data::sft_layout::packed}) {
        INFO((layout == data::sft_layout::padded ? "padded" : "packed"));
        const auto ds = sums_dataset(T, layout, 100);
        auto whole = quiet(16);
        whole.eval_every = 4;
        whole.grad_accumulation = 2;
        ctdl::model<tiny> a{ctdl::seed{1}};
        ctdl::optim::adamw oa{a, {}};
        ctdl::rng ga{ctdl::seed{9}};
        const auto ra = ctdl::train::run<B, T>(a, oa, ds, ga, whole);
        {
            ctdl::model<tiny> b{ctdl::seed{1}};
            ctdl::optim::adamw ob{b, {}};
            ctdl::rng gb{ctdl::seed{9}};
            auto o = whole;
            o.stop_after = 8;
            o.checkpoint = path;
            ctdl::train::run<B, T>(b, ob, ds, gb, o);
        }
        ctdl::model<tiny> c{ctdl::seed{123}};
        ctdl::optim::adamw oc{c, {}};
        ctdl::rng gc{ctdl::seed{0}};
        CHECK(ctdl::train::load_checkpoint(path, c, oc, gc).step == 8);
        const auto rc = ctdl::train::run<B, T>(c, oc, ds, gc, whole);
        CHECK(bits(a.parameters(), a.parameter_count) == bits(c.parameters(), c.parameter_count));
        CHECK(ga.state() == gc.state());
        REQUIRE(rc.validation_curve.size() == 2);  // steps 12 and 16
        CHECK(rc.validation_curve.back().loss == ra.validation_curve.back().loss);
        CHECK(rc.train_curve.back().loss == ra.train_curve.back().loss);
    }
}

TEST_CASE("SFT with train::run: data laid out for another context is refused before anything is written",
          "[sft]") {
    const ctdl_test::temp_dir dir("ctdl_sft_refused");
    const auto ds = sums_dataset(8, data::sft_layout::padded, 40);
    ctdl::model<tiny> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {}};
    ctdl::rng g{ctdl::seed{9}};
    auto o = quiet(2);
    o.checkpoint = dir.path / "c.safetensors";
    CHECK_THROWS_WITH((ctdl::train::run<B, T>(net, opt, ds, g, o)), Contains("context of 8 tokens, not 16"));
    CHECK(!std::filesystem::exists(o.checkpoint));
    CHECK(opt.step_count() == 0);
}
