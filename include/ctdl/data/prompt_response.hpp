#pragma once
// Prompt/response pairs for supervised fine-tuning, read from JSON lines:
//
//   {"prompt": "2+3=", "response": "5"}
//   {"prompt": "Who wrote it?", "response": "Tom.", "id": 17}
//
//   std::vector<ctdl::data::prompt_response> p = ctdl::data::read_prompt_responses("train.jsonl");
//   auto q = ctdl::data::parse_prompt_responses(text, "inline data");   // from memory, named in errors
//   auto r = ctdl::data::read_prompt_responses(std::cin, "stdin");       // from a stream
//
// The rules, for every line of the text:
// - a line ends at '\n'; a '\r' just before it is dropped (CRLF files read as LF ones), and
//   a UTF-8 byte-order mark at the very start of the text is skipped;
// - a blank line (nothing, or only spaces, tabs and '\r') is skipped;
// - any other line is one strict JSON object (json::parse of io/json.hpp: RFC 8259, UTF-8
//   only, no duplicate keys) with a member "prompt" and a member "response", each a
//   string (either may be empty here; sft_dataset decides what it accepts);
// - other members are ignored by default (ids, categories, sources), so files written
//   for other tools load; with prompt_response_options::allow_extra_members = false they
//   are refused, naming the first one.
// Anything else is refused with a ctdl::error naming the source, the 1-based line number
// and what is wrong (for malformed JSON: the 1-based byte column and the parser's
// reason), and a text without a single pair is refused too. On an error nothing is
// returned: the caller's data stays as it was.
#include <cstddef>
#include <filesystem>
#include <istream>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../io/file_io.hpp"
#include "../io/json.hpp"
#include "../io/text.hpp"

namespace ctdl::data {

/// One training example: the text the model is given, the text it should answer.
struct prompt_response {
    std::string prompt;
    std::string response;
    std::size_t line = 0;  ///< 1-based line of the source it came from (0: not from a file)
    friend bool operator==(const prompt_response&, const prompt_response&) = default;
};

struct prompt_response_options {
    /// Members other than "prompt" and "response": ignored (true) or refused (false).
    bool allow_extra_members = true;
};

namespace detail {

inline const char* json_kind_name(json::kind k) {
    switch (k) {
        case json::kind::null: return "null";
        case json::kind::boolean: return "a boolean";
        case json::kind::number: return "a number";
        case json::kind::string: return "a string";
        case json::kind::array: return "an array";
        case json::kind::object: return "an object";
    }
    return "a value";
}

[[noreturn]] inline void refuse_line(std::string_view source, std::size_t line, const std::string& what) {
    throw error("prompt/response data '" + std::string(source) + "' line " + std::to_string(line) + ": " + what);
}

inline bool blank(std::string_view line) {
    for (const char c : line)
        if (c != ' ' && c != '\t' && c != '\r') return false;
    return true;
}

}  // namespace detail

/// The pairs in text, one JSON object per non-blank line (rules: the header comment);
/// `source` names the text in error messages ("'<source>' line 3: ...").
inline std::vector<prompt_response> parse_prompt_responses(std::string_view text, std::string_view source = "text",
                                                           const prompt_response_options& opt = {}) {
    if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
    std::vector<prompt_response> out;
    std::size_t line_no = 0;
    for (std::size_t at = 0; at < text.size();) {
        const std::size_t nl = text.find('\n', at);
        const std::size_t end = nl == std::string_view::npos ? text.size() : nl;
        std::string_view line = text.substr(at, end - at);
        at = nl == std::string_view::npos ? text.size() : nl + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (detail::blank(line)) continue;
        json::value v;
        try {
            v = json::parse(line);
        } catch (const json::parse_error& e) {
            detail::refuse_line(source, line_no,
                                "malformed JSON at column " + std::to_string(e.position() + 1) + ": " + e.reason());
        }
        if (!v.is_object())
            detail::refuse_line(source, line_no,
                                std::string("expected a JSON object {\"prompt\": ..., \"response\": ...}, found ") +
                                    detail::json_kind_name(v.kind));
        prompt_response p;
        p.line = line_no;
        for (const auto& [name, field] : {std::pair<const char*, std::string*>{"prompt", &p.prompt},
                                          std::pair<const char*, std::string*>{"response", &p.response}}) {
            const json::value* m = v.find(name);
            if (!m) detail::refuse_line(source, line_no, std::string("no \"") + name + "\" member");
            if (!m->is_string())
                detail::refuse_line(source, line_no,
                                    std::string("\"") + name + "\" is " + detail::json_kind_name(m->kind) +
                                        ", expected a string");
            *field = m->text;
        }
        if (!opt.allow_extra_members)
            for (const std::string& key : v.keys)
                if (key != "prompt" && key != "response")
                    detail::refuse_line(source, line_no,
                                        "member " + json::detail::quoted_key(key) +
                                            " is neither \"prompt\" nor \"response\" (extra members are refused)");
        out.push_back(std::move(p));
    }
    if (out.empty())
        throw error("prompt/response data '" + std::string(source) + "' holds no prompt/response pair (" +
                    (line_no == 0 ? "it is empty" : "its lines are all blank") + ")");
    return out;
}

/// The pairs in the file at path (rules: the header comment); errors name the file.
inline std::vector<prompt_response> read_prompt_responses(const std::filesystem::path& path,
                                                          const prompt_response_options& opt = {}) {
    const std::vector<std::byte> bytes = ctdl::detail::read_file(path);
    return parse_prompt_responses({reinterpret_cast<const char*>(bytes.data()), bytes.size()}, path.string(), opt);
}

/// The pairs read from in up to its end; `source` names it in errors.
inline std::vector<prompt_response> read_prompt_responses(std::istream& in, std::string_view source = "stream",
                                                          const prompt_response_options& opt = {}) {
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw error("prompt/response data '" + std::string(source) + "': the stream could not be read");
    return parse_prompt_responses(text, source, opt);
}

}  // namespace ctdl::data
