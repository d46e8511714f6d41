// libFuzzer target: the safetensors reader on arbitrary bytes.
//
// Checks, beyond "no crash, no sanitizer report": a refused file throws ctdl::error only
// (never std::bad_alloc or anything else); the header-only reader (snapshot_metadata's)
// accepts exactly the files the full reader accepts, with the same metadata and tensors;
// load_into leaves a model bitwise unchanged when it refuses; every message is short.
// The only file the header-only reader accepts and the full one refuses is one whose data
// does not match its checksum (the header-only reader does not read the data).
// safetensors::view over the same bytes (borrowed) accepts and refuses exactly what parse
// does, with the same message, and its tensors point into the bytes; F16 and BF16 tensors
// widen as an independent reference computes it; parameters_in_place, when it accepts,
// hands back exactly the data section, and what it accepts loads to the same values.
#include <bit>
#include <cmath>
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

/// The float a 16-bit pattern is, computed another way than the reader's bit manipulation:
/// by arithmetic (f16) or as the float with those top bits (bf16). NaNs compared as NaNs
/// with their sign and payload.
std::uint32_t reference_widen(std::uint16_t h, st::dtype type) {
    if (type == st::dtype::bf16) {
        std::uint32_t f = 0;
        std::memcpy(reinterpret_cast<unsigned char*>(&f) + (std::endian::native == std::endian::little ? 2 : 0), &h, 2);
        return f;
    }
    const int exp = (h >> 10) & 31;
    const int mant = h & 1023;
    const float sign = (h & 0x8000) ? -1.0f : 1.0f;
    if (exp == 31) {
        if (mant == 0) return std::bit_cast<std::uint32_t>(sign * INFINITY);
        return (h & 0x8000u ? 0x80000000u : 0u) | 0x7FC00000u | (std::uint32_t(mant) << 13);
    }
    const float v = exp == 0 ? std::ldexp(float(mant), -24) : std::ldexp(float(1024 + mant), exp - 25);
    return std::bit_cast<std::uint32_t>(sign * v);
}

void check_widening(const st::tensor_info& t) {
    if (t.type != st::dtype::f16 && t.type != st::dtype::bf16) return;
    std::vector<float> out(t.element_count());
    t.convert_to(std::span(out));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto bits = static_cast<std::uint16_t>(std::to_integer<unsigned>(t.bytes[2 * i]) |
                                                     (std::to_integer<unsigned>(t.bytes[2 * i + 1]) << 8));
        if (std::bit_cast<std::uint32_t>(out[i]) != reference_widen(bits, t.type)) die("a 16-bit float widened wrong");
    }
}

/// view() over bytes agrees with parse(): the same acceptance and message, the same tensors.
void check_view(const std::vector<std::byte>& bytes, const st::file* parsed, const std::string& parse_error) {
    try {
        const st::file v = st::view(bytes, "fuzz");
        if (!parsed) die("view accepts a file parse refuses");
        if (!v.borrowed() || v.bytes().data() != bytes.data()) die("view copied the bytes");
        if (v.tensors().size() != parsed->tensors().size() || v.metadata() != parsed->metadata())
            die("view and parse disagree");
        for (std::size_t i = 0; i < v.tensors().size(); ++i) {
            const auto& t = v.tensors()[i];
            if (t.bytes.size() && (t.bytes.data() < bytes.data() || t.bytes.data() + t.bytes.size() > bytes.data() + bytes.size()))
                die("a viewed tensor's bytes lie outside the bytes");
            if (t.name != parsed->tensors()[i].name || t.begin != parsed->tensors()[i].begin) die("view and parse disagree");
        }
        // In place (as map_frozen / view_frozen take it) or not: never a crash, and if it is
        // taken, it is the data section, and the same values as load.
        try {
            const auto flat = ctdl::parameters_in_place<ctdl_test::fake_model<float>>(v);
            if (static_cast<const void*>(flat.data()) != v.data_section().data()) die("in place, but not the data section");
            ctdl_test::fake_model<float> m;
            ctdl::load_into(m, v);
            if (std::memcmp(m.params.data(), flat.data(), sizeof m.params) != 0) die("in place differs from load");
        } catch (const ctdl::error& e) {
            check_message(e);
        }
    } catch (const ctdl::error& e) {
        check_message(e);
        if (parsed) die("view refuses a file parse accepts");
        if (parse_error != e.what()) die("view and parse refuse with different messages");
    }
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

    const std::vector<std::byte> kept = bytes;  // for view(), after parse has taken bytes
    try {
        const st::file f = st::file::parse(std::move(bytes), "fuzz");
        check_view(kept, &f, {});
        for (const auto& t : f.tensors()) check_widening(t);
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
        if (header_ok && !std::strstr(e.what(), "checksum mismatch"))
            die("the header-only reader accepts a file the full reader refuses (not for its checksum)");
        check_view(kept, nullptr, e.what());
    }
    return 0;
}
