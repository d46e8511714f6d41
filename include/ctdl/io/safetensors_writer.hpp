#pragma once
// Writing safetensors files: named tensors from spans, plus metadata.
//
//   ctdl::safetensors::writer w;
//   w.add("0.weight", {3, 4}, std::span(weights));        // dtype from the element type
//   w.add("adam.step", ctdl::safetensors::dtype::i64, {}, std::as_bytes(std::span(&step, 1)));
//   w.metadata()["step"] = "100";
//   w.write("model.safetensors");                          // atomic: temporary, fsync, rename
//
// The writer does not copy tensor data: every span must stay valid until write() or
// bytes() returns. Tensors are laid out contiguously in the order they were added; the
// header is compact JSON ("__metadata__" first when there is any), padded with spaces so
// the data section starts at a multiple of 8 bytes.
//
//   w.with_checksum();   // metadata "ctdl.checksum": the data section's ctdl64x8 (checksum.hpp),
//                        // checked by every reader; ctdl::save and checkpoints turn it on
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "checksum.hpp"
#include "file_io.hpp"
#include "json.hpp"
#include "safetensors_format.hpp"

namespace ctdl::safetensors {

class writer {
public:
    /// Adds a tensor given its raw bytes in native byte order. Throws ctdl::error if the
    /// name is empty, reserved, repeated or not UTF-8, or if data is not size_of(type) ×
    /// the product of shape bytes long.
    [[gnu::cold]] void add(std::string name, dtype type, std::vector<std::size_t> shape, std::span<const std::byte> data) {
        const std::string where = "safetensors writer: tensor '" + name + "': ";
        if (name.empty()) throw error("safetensors writer: a tensor name is empty");
        if (name == metadata_key) throw error(where + "the name is reserved for metadata");
        if (!json::is_valid_utf8(name)) throw error("safetensors writer: a tensor name is not valid UTF-8");
        if (names_.count(name)) throw error(where + "added twice");
        std::uint64_t bytes = size_of(type);
        for (const std::size_t d : shape) {
            const auto b = detail::checked_mul(bytes, d);
            if (!b) throw error(where + "shape " + detail::shape_string(shape) + " overflows the byte count");
            bytes = *b;
        }
        if (bytes != data.size())
            throw error(where + std::string(to_string(type)) + " " + detail::shape_string(shape) + " needs " +
                        std::to_string(bytes) + " bytes, but the data has " + std::to_string(data.size()));
        names_.insert(name);
        entries_.push_back({std::move(name), type, std::move(shape), data});
    }

    /// Adds a tensor of element type T (float → F32, double → F64, ...).
    template <element T, std::size_t Extent>
    void add(std::string name, std::vector<std::size_t> shape, std::span<T, Extent> data) {
        add(std::move(name), dtype_of<T>, std::move(shape), std::as_bytes(std::span<const T>(data)));
    }

    ctdl::metadata& metadata() { return metadata_; }
    const ctdl::metadata& metadata() const { return metadata_; }

    /// Also writes the data section's checksum (checksum.hpp) as metadata "ctdl.checksum",
    /// in place of any entry of that name in metadata(). Every reader checks it.
    void with_checksum(bool on = true) { checksum_ = on; }

    /// The header as it will be written: JSON plus padding, a multiple of 8 bytes long.
    [[gnu::cold]] std::string header() const {
        std::string h = "{";
        bool first = true;
        const auto comma = [&] {
            if (!first) h += ',';
            first = false;
        };
        if (!metadata_.empty() || checksum_) {
            comma();
            json::write_string(h, metadata_key);
            h += ":{";
            bool first_pair = true;
            const auto pair = [&](std::string_view key, std::string_view value) {
                if (!first_pair) h += ',';
                first_pair = false;
                json::write_string(h, key);
                h += ':';
                json::write_string(h, value);
            };
            for (const auto& [key, value] : metadata_) {
                if (!json::is_valid_utf8(key) || !json::is_valid_utf8(value))
                    throw error("safetensors writer: metadata entry '" + key + "' is not valid UTF-8");
                if (!checksum_ || key != ctdl::detail::checksum_key) pair(key, value);
            }
            if (checksum_) {
                ctdl::detail::checksum64 sum;
                emit_data([&](const void* p, std::size_t n) { sum.update(p, n); });
                pair(ctdl::detail::checksum_key, ctdl::detail::checksum_string(sum.finish()));
            }
            h += '}';
        }
        std::uint64_t offset = 0;
        for (const auto& e : entries_) {
            comma();
            json::write_string(h, e.name);
            h += ":{\"dtype\":";
            json::write_string(h, to_string(e.type));
            h += ",\"shape\":[";
            for (std::size_t i = 0; i < e.shape.size(); ++i) {
                if (i) h += ',';
                json::write_uint(h, e.shape[i]);
            }
            h += "],\"data_offsets\":[";
            json::write_uint(h, offset);
            h += ',';
            offset += e.data.size();
            json::write_uint(h, offset);
            h += "]}";
        }
        h += '}';
        h.append((8 - h.size() % 8) % 8, ' ');
        return h;
    }

    /// The whole file, in memory.
    std::vector<std::byte> bytes() const {
        std::vector<std::byte> out;
        emit([&](const void* p, std::size_t n) {
            const auto* b = static_cast<const std::byte*>(p);
            out.insert(out.end(), b, b + n);
        });
        return out;
    }

    /// Writes the file atomically: path holds either its old content or the complete
    /// new file, whatever happens. Throws ctdl::error naming path on failure.
    void write(const std::filesystem::path& path) const {
        std::string h;
        try {
            h = header();
        } catch (const error& e) {
            throw error("cannot write '" + path.string() + "': " + e.what());
        }
        ctdl::detail::atomic_write(path, [&](auto&& sink) { emit(sink, h); });
    }

private:
    struct entry {
        std::string name;
        dtype type;
        std::vector<std::size_t> shape;
        std::span<const std::byte> data;
    };
    std::vector<entry> entries_;
    std::set<std::string, std::less<>> names_;
    ctdl::metadata metadata_;
    bool checksum_ = false;

    template <class Sink>
    void emit(Sink&& sink) const {
        emit(sink, header());
    }

    template <class Sink>
    void emit(Sink&& sink, const std::string& h) const {
        unsigned char length[8];
        for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(std::uint64_t{h.size()} >> (8 * i));
        sink(length, sizeof length);
        sink(h.data(), h.size());
        emit_data(sink);
    }

    /// The data section: every tensor's bytes, little-endian, in the order added.
    template <class Sink>
    void emit_data(Sink&& sink) const {
        for (const auto& e : entries_) {
            if constexpr (std::endian::native == std::endian::little) {
                sink(e.data.data(), e.data.size());
            } else {  // swap each element to little-endian, a chunk at a time
                const std::size_t size = size_of(e.type);
                std::byte chunk[4096];
                for (std::size_t done = 0; done < e.data.size();) {
                    const std::size_t n = std::min(sizeof chunk / size, (e.data.size() - done) / size);
                    detail::copy_little_endian(chunk, e.data.data() + done, n, size);
                    sink(chunk, n * size);
                    done += n * size;
                }
            }
        }
    }
};

}  // namespace ctdl::safetensors
