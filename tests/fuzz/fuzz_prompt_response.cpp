// libFuzzer target: the prompt/response JSON-lines reader (ctdl/data/prompt_response.hpp)
// on arbitrary text, and sft_dataset on what it accepts.
//
// Checks, beyond "no crash, no sanitizer report": only ctdl::error is thrown, and every
// refusal names a line or says the text holds no pair; accepted pairs have increasing line
// numbers within the text; what the strict reader (extra members refused) accepts, the
// default reader accepts the same; the pairs written back as JSON lines read back equal;
// and an sft_dataset of them (byte tokenizer, padded and packed, context 8) is either
// refused with ctdl::error or has 0/1 masks whose sum is its response_tokens().
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <ctdl/data/prompt_response.hpp>
#include <ctdl/data/sft.hpp>
#include <ctdl/data/tokenizer.hpp>

namespace data = ctdl::data;

namespace {
[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_prompt_response: invariant broken: %s\n", what);
    std::abort();
}

void check_refusal(const ctdl::error& e) {
    const std::string_view what = e.what();
    if (what.find("' line ") == std::string_view::npos &&
        what.find("holds no prompt/response pair") == std::string_view::npos)
        die("a refusal names neither a line nor an empty text");
}

void check_dataset(const std::vector<data::prompt_response>& pairs, data::sft_layout layout) {
    if (pairs.size() < 2) return;
    try {
        const data::sft_dataset ds(pairs, data::byte_tokenizer{},
                                   {.context = 8, .validation_fraction = 0.5, .layout = layout});
        for (const data::split s : {data::split::train, data::split::validation}) {
            if (ds.rows(s) == 0 || ds.rows(s) > ds.examples(s))
                die("a split's rows are not between 1 and its examples");
            if (layout == data::sft_layout::padded && ds.rows(s) != ds.examples(s))
                die("padded: not one row per example");
            std::size_t ones = 0;
            for (std::size_t i = 0; i < ds.rows(s); ++i)
                for (const float w : ds.row(s, i).mask) {
                    if (w != 0.0f && w != 1.0f) die("a mask value other than 0 and 1");
                    ones += w == 1.0f;
                }
            if (ones != ds.response_tokens(s)) die("the mask's sum is not response_tokens()");
            if (ones < ds.examples(s)) die("an example without a counted target");
        }
    } catch (const ctdl::error&) {
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(bytes), size);
    std::size_t lines = 0;
    for (const char c : text) lines += c == '\n';
    if (!text.empty() && text.back() != '\n') ++lines;

    std::vector<data::prompt_response> pairs;
    bool ok = false;
    try {
        pairs = data::parse_prompt_responses(text, "fuzz");
        ok = true;
    } catch (const ctdl::error& e) {
        check_refusal(e);
    }
    if (ok) {
        if (pairs.empty()) die("accepted no pair");
        for (std::size_t i = 0; i < pairs.size(); ++i)
            if (pairs[i].line == 0 || pairs[i].line > lines || (i > 0 && pairs[i].line <= pairs[i - 1].line))
                die("line numbers not increasing within the text");
        std::string back;
        for (const auto& p : pairs) {
            back += "{\"prompt\": ";
            ctdl::json::write_string(back, p.prompt);
            back += ", \"response\": ";
            ctdl::json::write_string(back, p.response);
            back += "}\n";
        }
        std::vector<data::prompt_response> again;
        try {
            again = data::parse_prompt_responses(back, "written back", {.allow_extra_members = false});
        } catch (const ctdl::error&) {
            die("pairs written back are refused");
        }
        if (again.size() != pairs.size()) die("pairs written back read back to another count");
        for (std::size_t i = 0; i < pairs.size(); ++i)
            if (again[i].prompt != pairs[i].prompt || again[i].response != pairs[i].response || again[i].line != i + 1)
                die("pairs written back read back different");
        check_dataset(pairs, data::sft_layout::padded);
        check_dataset(pairs, data::sft_layout::packed);
    }
    try {
        const auto strict = data::parse_prompt_responses(text, "fuzz", {.allow_extra_members = false});
        if (!ok || strict != pairs)
            die("the strict reader accepts what the default one refuses, or reads it otherwise");
    } catch (const ctdl::error& e) {
        check_refusal(e);
    }
    return 0;
}
