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
// tensor and what was expected against what was found.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../core/error.hpp"
#include "file_io.hpp"
#include "json.hpp"
#include "safetensors_format.hpp"

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
};

class file {
public:
    /// Validates bytes (a whole file's content) and takes ownership of them. origin names
    /// the source in error messages (read() passes the path).
    static file parse(std::vector<std::byte> bytes, std::string origin = "<memory>") {
        file f;
        f.origin_ = std::move(origin);
        f.bytes_ = std::move(bytes);
        f.validate();
        return f;
    }

    file(file&&) noexcept = default;
    file& operator=(file&&) noexcept = default;
    file(const file&) = delete;  // tensor_info::bytes point into this object's buffer
    file& operator=(const file&) = delete;

    const std::string& origin() const { return origin_; }
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
        const tensor_info* t = find(name);
        if (!t)
            fail("missing tensor '" + std::string(name) + "' (expected " + std::string(to_string(type)) +
                 " " + detail::shape_string(shape) + ")");
        if (t->type != type)
            fail("tensor '" + t->name + "': expected dtype " + std::string(to_string(type)) + ", found " +
                 std::string(to_string(t->type)) + " (dtypes are not converted on load)");
        if (!std::equal(shape.begin(), shape.end(), t->shape.begin(), t->shape.end()))
            fail("tensor '" + t->name + "': expected shape " + detail::shape_string(shape) + ", found " +
                 detail::shape_string(t->shape));
        return *t;
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
    [[noreturn]] void fail(const std::string& what) const {
        throw error("safetensors file '" + origin_ + "': " + what);
    }

private:
    file() = default;

    std::string origin_;
    std::vector<std::byte> bytes_;
    std::size_t header_size_ = 0;
    std::vector<tensor_info> tensors_;
    ctdl::metadata metadata_;
    std::map<std::string, std::size_t, std::less<>> index_;

    void validate() {
        if (bytes_.size() < 8)
            fail("truncated: the file has " + std::to_string(bytes_.size()) +
                 " bytes, fewer than the 8-byte header length");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | std::to_integer<std::uint64_t>(bytes_[static_cast<std::size_t>(i)]);
        if (n > max_header_size)
            fail("header length " + std::to_string(n) + " exceeds the limit of " + std::to_string(max_header_size) +
                 " bytes");
        if (n > bytes_.size() - 8)
            fail("truncated: header length " + std::to_string(n) + " runs past the end of the file (" +
                 std::to_string(bytes_.size()) + " bytes)");
        header_size_ = static_cast<std::size_t>(n);

        json::value root;
        try {
            root = json::parse(header());
        } catch (const json::parse_error& e) {
            fail("malformed header JSON at header byte " + std::to_string(e.position()) + " (file byte " +
                 std::to_string(e.position() + 8) + "): " + e.reason());
        }
        if (!root.is_object()) fail("the header is not a JSON object");

        const std::span<const std::byte> data = std::span<const std::byte>(bytes_).subspan(8 + header_size_);
        for (std::size_t i = 0; i < root.keys.size(); ++i) {
            if (root.keys[i] == metadata_key) read_metadata(root.items[i]);
            else read_entry(root.keys[i], root.items[i], data);
        }
        check_tiling(data.size());
        for (std::size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
    }

    void read_metadata(const json::value& v) {
        if (!v.is_object()) fail("\"__metadata__\" is not a JSON object");
        for (std::size_t i = 0; i < v.keys.size(); ++i) {
            if (!v.items[i].is_string())
                fail("\"__metadata__\" entry '" + v.keys[i] + "' is not a string");
            metadata_.emplace(v.keys[i], v.items[i].text);
        }
    }

    void read_entry(const std::string& name, const json::value& v, std::span<const std::byte> data) {
        const std::string where = "tensor '" + name + "': ";
        if (!v.is_object()) fail(where + "the entry is not a JSON object");
        for (const auto& key : v.keys)
            if (key != "dtype" && key != "shape" && key != "data_offsets")
                fail(where + "unknown field \"" + key + "\" (expected dtype, shape, data_offsets)");
        const json::value* dt = v.find("dtype");
        const json::value* sh = v.find("shape");
        const json::value* off = v.find("data_offsets");
        if (!dt) fail(where + "missing field \"dtype\"");
        if (!sh) fail(where + "missing field \"shape\"");
        if (!off) fail(where + "missing field \"data_offsets\"");

        tensor_info t;
        t.name = name;
        if (!dt->is_string()) fail(where + "\"dtype\" is not a string");
        const auto type = parse_dtype(dt->text);
        if (!type) fail(where + "unknown dtype \"" + dt->text + "\"");
        t.type = *type;

        if (!sh->is_array()) fail(where + "\"shape\" is not an array");
        std::uint64_t count = 1;
        for (const auto& d : sh->items) {
            const auto extent = d.as_u64();
            if (!extent) fail(where + "\"shape\" holds something other than a non-negative integer");
            if constexpr (sizeof(std::size_t) < sizeof(std::uint64_t))
                if (*extent > SIZE_MAX) fail(where + "shape extent " + d.text + " is too large");
            t.shape.push_back(static_cast<std::size_t>(*extent));
            const auto c = detail::checked_mul(count, *extent);
            if (!c) fail(where + "shape " + detail::shape_string(t.shape) + "... overflows the element count");
            count = *c;
        }
        const auto nbytes = detail::checked_mul(count, size_of(t.type));
        if (!nbytes) fail(where + "shape " + detail::shape_string(t.shape) + " overflows the byte count");

        if (!off->is_array() || off->items.size() != 2 || !off->items[0].as_u64() || !off->items[1].as_u64())
            fail(where + "\"data_offsets\" is not [begin, end] with two non-negative integers");
        t.begin = *off->items[0].as_u64();
        t.end = *off->items[1].as_u64();
        const std::string range = "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "]";
        if (t.end < t.begin) fail(where + range + " end before begin");
        if (t.end - t.begin != *nbytes)
            fail(where + range + " hold " + std::to_string(t.end - t.begin) + " bytes, but " +
                 std::string(to_string(t.type)) + " " + detail::shape_string(t.shape) + " needs " +
                 std::to_string(*nbytes));
        if (t.end > data.size())
            fail(where + range + " reach past the end of the data section (" + std::to_string(data.size()) +
                 " bytes): the file is truncated or the offsets are out of range");
        t.bytes = data.subspan(static_cast<std::size_t>(t.begin), static_cast<std::size_t>(t.end - t.begin));
        tensors_.push_back(std::move(t));
    }

    // The byte ranges, sorted, must tile [0, data_size) exactly.
    void check_tiling(std::size_t data_size) const {
        std::vector<const tensor_info*> order;
        for (const auto& t : tensors_) order.push_back(&t);
        std::sort(order.begin(), order.end(), [](const tensor_info* a, const tensor_info* b) {
            return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
        });
        const auto range = [](const tensor_info* t) {
            return "'" + t->name + "' [" + std::to_string(t->begin) + ", " + std::to_string(t->end) + "]";
        };
        std::uint64_t covered = 0;
        const tensor_info* previous = nullptr;
        for (const tensor_info* t : order) {
            if (t->begin < covered)
                fail("data_offsets of tensors " + range(previous) + " and " + range(t) + " overlap");
            if (t->begin > covered)
                fail("no tensor covers data bytes [" + std::to_string(covered) + ", " + std::to_string(t->begin) +
                     ")" + (previous ? " after tensor " + range(previous) : std::string{}));
            covered = t->end;
            previous = t;
        }
        if (covered != data_size)
            fail("the data section has " + std::to_string(data_size) + " bytes, but the tensors cover only " +
                 std::to_string(covered));
    }
};

/// Reads and validates the safetensors file at path.
inline file read(const std::filesystem::path& path) {
    return file::parse(ctdl::detail::read_file(path), path.string());
}

}  // namespace ctdl::safetensors
