#pragma once
// Reading safetensors files: a parsed, fully validated view of one file.
//
//   const auto f = ctdl::safetensors::read("model.safetensors");   // throws ctdl::error
//   for (const auto& t : f.tensors())  // header order
//       std::printf("%s %s %s\n", t.name.c_str(), to_string(t.type).data(), ...);
//   std::vector<float> w(12);
//   f.read<float>("0.weight", {{3, 4}}, w);   // checks dtype F32 and shape [3, 4]
//   f.metadata().at("step");
//
// read() accepts only a file that is entirely well formed: the header is strict JSON,
// every entry is {"dtype", "shape", "data_offsets"} with a known dtype, each tensor's
// byte range matches dtype size × shape, and the ranges tile the data section exactly
// (no overlap, no gap, no trailing bytes). Every error message names the file, the
// tensor and what was expected against what was found, and stays short (values from
// the file are cut to ~80 characters).
//
// Reading costs bounded memory whatever the file holds: the header is parsed one entry at
// a time within the limits of safetensors_format.hpp (rank, tensors, metadata entries,
// name lengths), and running out of memory is reported as ctdl::error, not std::bad_alloc.
// detail::read_header_only(path) reads and checks only the header (the tensors without
// their bytes); ctdl::snapshot_metadata (snapshot.hpp) is its public face.
//
// A file whose metadata holds "ctdl.checksum" (ctdl::save writes it) must match it: the
// data section is hashed (ctdl64x8, checksum.hpp) and a difference is "checksum mismatch".
// view(bytes, origin) validates borrowed bytes (a mapped file, an embedded image) exactly
// as read() validates a file, without copying them.
// Tensors load as their own dtype (copy_to) or, into float, also from F16 and BF16
// (convert_to, loads_as): widened exactly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <new>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "checksum.hpp"
#include "file_io.hpp"
#include "json.hpp"
#include "safetensors_format.hpp"
#include "text.hpp"

namespace ctdl::safetensors {

/// One tensor of a file: its header entry and its bytes (file byte order).
struct tensor_info {
    std::string name;
    dtype type = dtype::f32;
    std::vector<std::size_t> shape;
    std::uint64_t begin = 0, end = 0;  ///< data_offsets, relative to the data section
    std::span<const std::byte> bytes;  ///< [begin, end) of the data section

    std::size_t element_count() const { return bytes.size() / size_of(type); }

    /// Copies the elements into out (native byte order). T must be this tensor's dtype
    /// and out must hold exactly element_count() elements; otherwise std::invalid_argument
    /// (file::read checks both and reports a bad file as ctdl::error).
    template <element T>
    void copy_to(std::span<T> out) const {
        if (dtype_of<T> != type || out.size() != element_count())
            throw std::invalid_argument("safetensors::tensor_info::copy_to: dtype or size differs");
        detail::copy_little_endian(out.data(), bytes.data(), out.size(), sizeof(T));
    }

    /// As copy_to, and for T = float also from F16 and BF16, widened exactly (loads_as<T>).
    template <element T>
    void convert_to(std::span<T> out) const {
        if constexpr (std::is_same_v<T, float>) {
            if (type == dtype::f16 || type == dtype::bf16) {
                if (out.size() != element_count())
                    throw std::invalid_argument("safetensors::tensor_info::convert_to: size differs");
                detail::widen_to_float(out.data(), bytes.data(), out.size(), type);
                return;
            }
        }
        copy_to(out);
    }
};

/// Whether a tensor of dtype t loads into elements of type T: its own dtype, and for float
/// also F16 and BF16 (widened exactly). Nothing else is converted: F64 does not narrow into
/// float, F32 does not widen into double.
template <element T>
constexpr bool loads_as(dtype t) {
    if (t == dtype_of<T>) return true;
    return std::is_same_v<T, float> && (t == dtype::f16 || t == dtype::bf16);
}

/// What loads_as<T> accepts, for messages: "F32 (or F16/BF16)", "F64".
template <element T>
std::string loadable_dtypes() {
    std::string s(to_string(dtype_of<T>));
    if constexpr (std::is_same_v<T, float>) s += " (or F16/BF16)";
    return s;
}

namespace detail {

[[noreturn]] inline void fail_in(const std::string& origin, const std::string& what) {
    throw error("safetensors file '" + origin + "': " + what);
}

inline std::string tensor_where(std::string_view name) { return "tensor '" + ctdl::detail::clip(name) + "': "; }

/// A header's contents: the tensors (without their bytes) and the metadata.
struct header_contents {
    std::vector<tensor_info> tensors;  ///< in header order; bytes is empty
    ctdl::metadata metadata;
};

/// The header length N that the first 8 bytes hold, checked against max_header_size and
/// against a file of file_size bytes.
inline std::size_t header_length(std::span<const std::byte> first, std::uint64_t file_size, const std::string& origin) {
    if (file_size < 8 || first.size() < 8)
        fail_in(origin, "truncated: the file has " + std::to_string(file_size) +
                            " bytes, fewer than the 8-byte header length");
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(first[static_cast<std::size_t>(i)]);
    if (n > max_header_size)
        fail_in(origin, "header length " + std::to_string(n) + " exceeds the limit of " +
                            std::to_string(max_header_size) + " bytes");
    if (n > file_size - 8)
        fail_in(origin, "truncated: header length " + std::to_string(n) + " runs past the end of the file (" +
                            std::to_string(file_size) + " bytes)");
    return static_cast<std::size_t>(n);
}

inline void read_metadata(json::value&& v, ctdl::metadata& out, const std::string& origin) {
    if (!v.is_object()) fail_in(origin, "\"__metadata__\" is not a JSON object");
    for (std::size_t i = 0; i < v.keys.size(); ++i) {
        if (!v.items[i].is_string())
            fail_in(origin, "\"__metadata__\" entry '" + ctdl::detail::clip(v.keys[i]) + "' is not a string");
        out.emplace(std::move(v.keys[i]), std::move(v.items[i].text));
    }
}

// Header handling runs once per file: [[gnu::cold]] has GCC compile it for size, which every
// translation unit that loads a snapshot pays for (the contract: about 0.5 s of 11 at -O2).
[[gnu::cold]] inline tensor_info read_entry(std::string&& name, const json::value& v, std::uint64_t data_size,
                              const std::string& origin) {
    const std::string where = tensor_where(name);
    const auto fail = [&](const std::string& what) { fail_in(origin, where + what); };
    if (!v.is_object()) fail("the entry is not a JSON object");
    for (const auto& key : v.keys)
        if (key != "dtype" && key != "shape" && key != "data_offsets")
            fail("unknown field " + ctdl::detail::quote(key) + " (expected dtype, shape, data_offsets)");
    const json::value* dt = v.find("dtype");
    const json::value* sh = v.find("shape");
    const json::value* off = v.find("data_offsets");
    if (!dt) fail("missing field \"dtype\"");
    if (!sh) fail("missing field \"shape\"");
    if (!off) fail("missing field \"data_offsets\"");

    tensor_info t;
    t.name = std::move(name);
    if (!dt->is_string()) fail("\"dtype\" is not a string");
    const auto type = parse_dtype(dt->text);
    if (!type) fail("unknown dtype " + ctdl::detail::quote(dt->text));
    t.type = *type;

    if (!sh->is_array()) fail("\"shape\" is not an array");
    if (sh->items.size() > max_rank)
        fail("\"shape\" has " + std::to_string(sh->items.size()) + " dimensions, more than the limit of " +
             std::to_string(max_rank));
    std::uint64_t count = 1;
    for (const auto& d : sh->items) {
        const auto extent = d.as_u64();
        if (!extent) fail("\"shape\" holds something other than a non-negative integer");
        if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t))
            if (*extent > SIZE_MAX) fail("shape extent " + d.text + " is too large");
        t.shape.push_back(static_cast<std::size_t>(*extent));
        const auto c = checked_mul(count, *extent);
        if (!c) fail("shape " + shape_string(t.shape) + "... overflows the element count");
        count = *c;
    }
    const auto nbytes = checked_mul(count, size_of(t.type));
    if (!nbytes) fail("shape " + shape_string(t.shape) + " overflows the byte count");

    if (!off->is_array() || off->items.size() != 2 || !off->items[0].as_u64() || !off->items[1].as_u64())
        fail("\"data_offsets\" is not [begin, end] with two non-negative integers");
    t.begin = *off->items[0].as_u64();
    t.end = *off->items[1].as_u64();
    const std::string range = "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
    if (t.end < t.begin) fail(range + " end before begin");
    if (t.end - t.begin != *nbytes)
        fail(range + " hold " + std::to_string(t.end - t.begin) + " bytes, but " + std::string(to_string(t.type)) +
             " " + shape_string(t.shape) + " needs " + std::to_string(*nbytes));
    if (t.end > data_size)
        fail(range + " reach past the end of the data section (" + std::to_string(data_size) +
             " bytes): the file is truncated or the offsets are out of range");
    return t;
}

// The byte ranges, sorted, must tile [0, data_size) exactly.
[[gnu::cold]] inline void check_tiling(const std::vector<tensor_info>& tensors, std::uint64_t data_size, const std::string& origin) {
    std::vector<const tensor_info*> order;
    order.reserve(tensors.size());
    for (const auto& t : tensors) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const tensor_info* a, const tensor_info* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    const auto range = [](const tensor_info* t) {
        std::string r = "'";  // (not "'" + clip(...): GCC 12 warns -Wrestrict on that, wrongly)
        r += ctdl::detail::clip(t->name);
        r += "' [" + std::to_string(t->begin) + ", " + std::to_string(t->end) + "]";
        return r;
    };
    std::uint64_t covered = 0;
    const tensor_info* previous = nullptr;
    for (const tensor_info* t : order) {
        if (t->begin < covered)
            fail_in(origin, "data_offsets of tensors " + range(previous) + " and " + range(t) + " overlap");
        if (t->begin > covered)
            fail_in(origin, "no tensor covers data bytes [" + std::to_string(covered) + ", " +
                                std::to_string(t->begin) + ")" +
                                (previous ? " after tensor " + range(previous) : std::string{}));
        covered = t->end;
        previous = t;
    }
    if (covered != data_size)
        fail_in(origin, "the data section has " + std::to_string(data_size) + " bytes, but the tensors cover only " +
                            std::to_string(covered));
}

/// Parses and checks a header (the N bytes after the length) for a data section of
/// data_size bytes: everything read() checks but the tensors' bytes themselves.
inline header_contents parse_header(std::string_view header, std::uint64_t data_size, const std::string& origin) {
    header_contents h;
    std::string current;  // the member being parsed, for messages
    bool in_member = false;
    const json::limits entry_limits{.max_depth = 2,           // {"shape": [..]}
                                    .max_array_items = max_rank,
                                    .max_object_members = 16,  // three fields, and room to name a wrong one
                                    .max_string_bytes = max_name_bytes,
                                    .max_key_bytes = max_name_bytes};
    const json::limits metadata_limits{.max_depth = 1,  // {"key": "value", ...}
                                       .max_array_items = 16,
                                       .max_object_members = max_metadata_entries,
                                       .max_string_bytes = max_metadata_value_bytes,
                                       .max_key_bytes = max_name_bytes};
    try {
        json::for_each_member(
            header, {.max_members = max_tensors + 1, .max_key_bytes = max_name_bytes},
            [&](const std::string& key) {
                current = key;
                in_member = true;
                return key == metadata_key ? metadata_limits : entry_limits;
            },
            [&](std::string key, json::value v) {
                in_member = false;
                if (key == metadata_key) {
                    read_metadata(std::move(v), h.metadata, origin);
                    return;
                }
                if (h.tensors.size() == max_tensors)
                    fail_in(origin, "the header has more than " + std::to_string(max_tensors) + " tensors (the limit)");
                h.tensors.push_back(read_entry(std::move(key), v, data_size, origin));
            });
    } catch (const json::parse_error& e) {
        if (e.reason() == "expected a JSON object") fail_in(origin, "the header is not a JSON object");
        fail_in(origin, "malformed header JSON at header byte " + std::to_string(e.position()) + " (file byte " +
                            std::to_string(e.position() + 8) + ")" +
                            (in_member ? ", in the entry " + ctdl::detail::quote(current) : std::string{}) + ": " +
                            e.reason());
    }
    check_tiling(h.tensors, data_size, origin);
    if (const auto it = h.metadata.find(std::string(ctdl::detail::checksum_key));
        it != h.metadata.end() && !ctdl::detail::parse_checksum(it->second))
        fail_in(origin, "metadata \"" + std::string(ctdl::detail::checksum_key) + "\" is not " +
                            std::string(ctdl::detail::checksum_algorithm) + ":<16 lowercase hex digits> but " +
                            ctdl::detail::quote(it->second, 40) + " (an unknown algorithm, or a damaged header)");
    return h;
}

/// Checks the data section against the checksum in the metadata, if there is one (parse_header
/// has checked its form): a ctdl::error "checksum mismatch" naming origin when they differ.
[[gnu::cold]] inline void verify_checksum(const ctdl::metadata& meta, std::span<const std::byte> data,
                                          const std::string& origin) {
    const auto it = meta.find(std::string(ctdl::detail::checksum_key));
    if (it == meta.end()) return;  // files from PyTorch and others have none
    const std::uint64_t stored = *ctdl::detail::parse_checksum(it->second);
    const std::uint64_t actual = ctdl::detail::checksum_of(data);
    if (stored != actual)
        fail_in(origin, "checksum mismatch: the data section (" + std::to_string(data.size()) + " bytes) hashes to " +
                            ctdl::detail::checksum_string(actual) + ", the header says " + it->second +
                            ": the file is corrupted");
}

}  // namespace detail

class file {
public:
    /// Validates bytes (a whole file's content) and takes ownership of them. origin names
    /// the source in error messages (read() passes the path).
    static file parse(std::vector<std::byte> bytes, std::string origin = "<memory>") {
        file f;
        f.origin_ = std::move(origin);
        f.owned_ = std::move(bytes);
        f.bytes_ = f.owned_;
        f.checked_validate();
        return f;
    }

    /// Validates bytes (a whole file's content) as parse does, without copying them: the
    /// file and its tensors point into bytes, which must outlive it (a mapped file, an
    /// image embedded in the program). See safetensors::view.
    static file view(std::span<const std::byte> bytes, std::string origin = "<memory>") {
        file f;
        f.origin_ = std::move(origin);
        f.bytes_ = bytes;
        f.borrowed_ = true;
        f.checked_validate();
        return f;
    }

    file(file&&) noexcept = default;
    file& operator=(file&&) noexcept = default;
    file(const file&) = delete;  // tensor_info::bytes point into this object's buffer
    file& operator=(const file&) = delete;

    const std::string& origin() const { return origin_; }
    /// The whole file's bytes, and its data section (the tensors' bytes, after the header).
    std::span<const std::byte> bytes() const { return bytes_; }
    std::span<const std::byte> data_section() const { return bytes_.subspan(8 + header_size_); }
    /// Whether the bytes are borrowed (view) rather than owned (parse, read).
    bool borrowed() const { return borrowed_; }
    /// The tensors in header order.
    std::span<const tensor_info> tensors() const { return tensors_; }
    const ctdl::metadata& metadata() const { return metadata_; }
    /// The header's JSON text, including any padding.
    std::string_view header() const {
        return {reinterpret_cast<const char*>(bytes_.data()) + 8, header_size_};
    }

    /// The tensor named name, or nullptr.
    const tensor_info* find(std::string_view name) const {
        const auto it = index_.find(name);
        return it == index_.end() ? nullptr : &tensors_[it->second];
    }

    /// The tensor named name, checked to have dtype type and the given shape.
    const tensor_info& expect(std::string_view name, dtype type, std::span<const std::size_t> shape) const {
        return expect_impl(
            name, shape, [&](dtype t) { return t == type; }, std::string(to_string(type)),
            "dtypes are not converted here");
    }

    /// The tensor named name, checked to have the given shape and a dtype that loads into T
    /// (loads_as<T>: T's own, or F16/BF16 for float).
    template <element T>
    const tensor_info& expect_loadable(std::string_view name, std::span<const std::size_t> shape) const {
        return expect_impl(
            name, shape, [](dtype t) { return loads_as<T>(t); }, loadable_dtypes<T>(),
            "only F16 and BF16 are converted on load, widened to F32");
    }

    /// Copies the tensor named name, checked against dtype_of<T> and shape, into out.
    template <element T>
    void read(std::string_view name, std::span<const std::size_t> shape, std::span<T> out) const {
        const tensor_info& t = expect(name, dtype_of<T>, shape);
        if (out.size() != t.element_count())
            throw std::invalid_argument("safetensors::file::read: output span of " + std::to_string(out.size()) +
                                        " elements for tensor '" + t.name + "' of " +
                                        std::to_string(t.element_count()));
        t.copy_to(out);
    }

    /// Throws ctdl::error("safetensors file '<origin>': " + what), for checks made by
    /// users of the file (e.g. read_parameters) so every message names the file the same way.
    [[noreturn]] void fail(const std::string& what) const { detail::fail_in(origin_, what); }

private:
    file() = default;

    template <class Accepts>
    [[gnu::cold]] const tensor_info& expect_impl(std::string_view name, std::span<const std::size_t> shape,
                                                 Accepts accepts, const std::string& expected,
                                                 const char* rule) const {
        const tensor_info* t = find(name);
        if (!t)
            fail("missing tensor '" + ctdl::detail::clip(name) + "' (expected " + expected + " " +
                 detail::shape_string(shape) + ")");
        if (!accepts(t->type))
            fail(detail::tensor_where(t->name) + "expected dtype " + expected + ", found " +
                 std::string(to_string(t->type)) + " (" + rule + ")");
        if (!std::equal(shape.begin(), shape.end(), t->shape.begin(), t->shape.end()))
            fail(detail::tensor_where(t->name) + "expected shape " + detail::shape_string(shape) + ", found " +
                 detail::shape_string(t->shape));
        return *t;
    }

    std::string origin_;
    std::vector<std::byte> owned_;     // parse, read: the bytes; view: empty
    std::span<const std::byte> bytes_;  // owned_, or the borrowed bytes (a vector's move keeps its buffer)
    bool borrowed_ = false;
    std::size_t header_size_ = 0;
    std::vector<tensor_info> tensors_;
    ctdl::metadata metadata_;
    std::map<std::string, std::size_t, std::less<>> index_;

    void checked_validate() {
        try {
            validate();
        } catch (const std::bad_alloc&) {
            fail("out of memory while reading the header (the file has " + std::to_string(bytes_.size()) + " bytes)");
        }
    }

    [[gnu::cold]] void validate() {
        header_size_ = detail::header_length(bytes_, bytes_.size(), origin_);
        const std::span<const std::byte> data = bytes_.subspan(8 + header_size_);
        detail::header_contents h = detail::parse_header(header(), data.size(), origin_);
        detail::verify_checksum(h.metadata, data, origin_);
        tensors_ = std::move(h.tensors);
        metadata_ = std::move(h.metadata);
        for (auto& t : tensors_)
            t.bytes = data.subspan(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
        for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
    }
};

namespace detail {

/// The header of the file at path, parsed and checked as read() does but for the tensors'
/// bytes, reading only the first 8 + N bytes of the file.
inline header_contents read_header_only(const std::filesystem::path& path) {
    const std::string origin = path.string();
    try {
        const ctdl::detail::readable_file f{path};
        if (!S_ISREG(f.status.st_mode)) fail_in(origin, "not a regular file (reading only its header needs one)");
        const auto size = static_cast<std::uint64_t>(f.status.st_size);
        std::byte first[8] = {};
        const std::size_t got = f.read_at(first, 8, 0, path);
        const std::size_t n = header_length(std::span<const std::byte>(first, got), size, origin);
        std::string text(n, '\0');
        if (f.read_at(text.data(), n, 8, path) != n)
            fail_in(origin, "truncated while reading: the header of " + std::to_string(n) + " bytes ends early");
        return parse_header(text, size - 8 - n, origin);
    } catch (const std::bad_alloc&) {
        fail_in(origin, "out of memory while reading the header");
    }
}

}  // namespace detail

/// Validates bytes, the whole content of a safetensors file, without copying them (as
/// read() validates a file, the checksum too): the file and its tensors point into bytes,
/// which must outlive it. origin names the bytes in messages.
///   static const unsigned char image[] = { #embed "net.safetensors" };   // or xxd -i
///   const auto f = ctdl::safetensors::view(std::as_bytes(std::span(image)), "net.safetensors (embedded)");
inline file view(std::span<const std::byte> bytes, std::string origin = "<memory>") {
    return file::view(bytes, std::move(origin));
}

/// Reads and validates the safetensors file at path.
inline file read(const std::filesystem::path& path) {
    std::vector<std::byte> bytes;
    try {
        bytes = ctdl::detail::read_file(path);
    } catch (const std::bad_alloc&) {
        detail::fail_in(path.string(), "out of memory while reading the file");
    }
    return file::parse(std::move(bytes), path.string());
}

}  // namespace ctdl::safetensors
