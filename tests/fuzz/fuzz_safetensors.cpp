// libFuzzer target: the safetensors reader on arbitrary bytes.
//
// Checks, beyond "no crash, no sanitizer report": a refused file throws ctdl::error only
// (never std::bad_alloc or anything else); the header-only reader (snapshot_metadata's)
// accepts exactly the files the full reader accepts, with the same metadata and tensors;
// load_into leaves a model bitwise unchanged when it refuses; every message is short.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <ctdl/io/snapshot.hpp>

#include "../fake_model.hpp"

namespace st = ctdl::safetensors;

namespace {
[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "fuzz_safetensors: invariant broken: %s\n", what);
    std::abort();
}
void check_message(const ctdl::error& e) {
    if (std::strlen(e.what()) >= 400) die("an error message longer than 400 characters");
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::vector<std::byte> bytes(size);
    if (size) std::memcpy(bytes.data(), data, size);

    // The header-only path, as snapshot_metadata runs it, on the same bytes.
    bool header_ok = false;
    st::detail::header_contents header;
    try {
        const std::size_t n = st::detail::header_length(bytes, size, "fuzz");
        header = st::detail::parse_header(
            std::string_view(reinterpret_cast<const char*>(bytes.data()) + 8, n), size - 8 - n, "fuzz");
        header_ok = true;
    } catch (const ctdl::error& e) {
        check_message(e);
    }

    try {
        const st::file f = st::file::parse(std::move(bytes), "fuzz");
        if (!header_ok) die("the full reader accepts a file the header-only reader refuses");
        if (f.metadata() != header.metadata) die("the two readers disagree on the metadata");
        if (f.tensors().size() != header.tensors.size()) die("the two readers disagree on the tensors");
        std::uint64_t covered = 0;
        for (std::size_t i = 0; i < f.tensors().size(); ++i) {
            const auto& t = f.tensors()[i];
            if (t.name != header.tensors[i].name || t.shape != header.tensors[i].shape) die("tensor mismatch");
            if (t.bytes.size() != t.end - t.begin) die("a tensor's bytes do not match its offsets");
            if (t.shape.size() > st::max_rank) die("rank above the limit");
            covered += t.bytes.size();
            if (f.find(t.name) != &t) die("find() does not return the tensor");
        }
        if (f.header().size() + 8 + covered != size) die("the tensors do not tile the data section");

        ctdl_test::fake_model<float> model;
        for (std::size_t i = 0; i < model.params.size(); ++i) model.params[i] = float(i) * 0.5f - 3.0f;
        const ctdl_test::fake_model<float> before = model;
        for (const bool allow : {false, true}) {
            try {
                ctdl::load_into(model, f, {.allow_unexpected = allow});
            } catch (const ctdl::error& e) {
                check_message(e);
                if (!model.same_bits(before)) die("a refused load changed the model");
            }
            model = before;
        }
    } catch (const ctdl::error& e) {
        check_message(e);
        if (header_ok) die("the header-only reader accepts a file the full reader refuses");
    }
    return 0;
}
