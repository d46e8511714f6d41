// libFuzzer target: the JSON reader (ctdl/io/json.hpp) on arbitrary text.
//
// Checks, beyond "no crash, no sanitizer report": only json::parse_error is thrown; a
// document accepted within limits is accepted without them, and one accepted without them
// is accepted by for_each_member when it is an object (same keys, same order); every
// string value and key written back with write_string parses to itself; as_u64 agrees
// with the number's text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <ctdl/io/json.hpp>

namespace json = ctdl::json;

namespace {
[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_json: invariant broken: %s\n", what);
    std::abort();
}

void check_round_trip(const std::string& s) {
    std::string out;
    json::value back;
    try {
        json::write_string(out, s);
        back = json::parse(out);
    } catch (const ctdl::error&) {
        die("a parsed string cannot be written back and parsed again");
    }
    if (!back.is_string() || back.text != s) die("write_string does not round-trip");
}

void walk(const json::value& v, int depth) {
    if (depth > json::max_depth + 1) die("deeper than max_depth");
    switch (v.kind) {
        case json::kind::string: check_round_trip(v.text); break;
        case json::kind::number: {
            const auto n = v.as_u64();
            if (n && std::to_string(*n) != v.text) die("as_u64 disagrees with the text");
            break;
        }
        case json::kind::object:
            if (v.keys.size() != v.items.size()) die("keys and items differ in length");
            for (const auto& k : v.keys) check_round_trip(k);
            [[fallthrough]];
        case json::kind::array:
            for (const auto& item : v.items) walk(item, depth + 1);
            break;
        default: break;
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    bool ok = false;
    json::value v;
    try {
        v = json::parse(text);
        ok = true;
        walk(v, 0);
    } catch (const json::parse_error& e) {
        if (e.position() > size) die("a parse_error position past the end of the text");
    }

    const json::limits tight{.max_depth = 3, .max_array_items = 4, .max_object_members = 4,
                             .max_string_bytes = 8, .max_key_bytes = 8};
    try {
        (void)json::parse(text, tight);
        if (!ok) die("accepted within limits but refused without them");
    } catch (const json::parse_error&) {
    }

    std::vector<std::string> keys;
    try {
        json::for_each_member(
            text, {.max_members = 1000},
            // the depth counts from the member's value, one level below the document's
            [](const std::string&) { return json::limits{.max_depth = json::max_depth - 1}; },
            [&](std::string key, json::value) { keys.push_back(std::move(key)); });
        if (!ok || !v.is_object()) die("for_each_member accepted what parse refuses");
        if (keys != v.keys) die("for_each_member saw other keys than parse");
    } catch (const json::parse_error&) {
        if (ok && v.is_object() && v.keys.size() <= 1000) die("for_each_member refused an object parse accepts");
    }
    return 0;
}
