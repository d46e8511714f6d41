#pragma once
// The safetensors format (https://github.com/huggingface/safetensors), the parts that
// reader and writer share: dtypes, metadata, limits and the byte-order helpers.
//
// A file is
//   8 bytes      N, the header length, unsigned little-endian
//   N bytes      a JSON object, UTF-8, possibly padded with trailing spaces:
//                  "__metadata__": {"key": "value", ...}                  (optional)
//                  "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//   the rest     the data section: every tensor's elements, row-major, little-endian, at
//                [begin, end) relative to the section's start; the tensors tile the
//                section exactly, with no gaps and no overlaps.
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace ctdl {

/// Free-form string pairs stored in a snapshot's "__metadata__" (step, RNG state, ...).
using metadata = std::map<std::string, std::string>;

}  // namespace ctdl

namespace ctdl::safetensors {

enum class dtype : unsigned char {
    boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, i64, u64, f64
};

namespace detail {
struct dtype_row {
    dtype type;
    std::string_view name;
    std::size_t size;
};
inline constexpr dtype_row dtype_table[] = {
    {dtype::boolean, "BOOL", 1}, {dtype::u8, "U8", 1},   {dtype::i8, "I8", 1},
    {dtype::f8_e5m2, "F8_E5M2", 1}, {dtype::f8_e4m3, "F8_E4M3", 1},
    {dtype::i16, "I16", 2},      {dtype::u16, "U16", 2}, {dtype::f16, "F16", 2},
    {dtype::bf16, "BF16", 2},    {dtype::i32, "I32", 4}, {dtype::u32, "U32", 4},
    {dtype::f32, "F32", 4},      {dtype::i64, "I64", 8}, {dtype::u64, "U64", 8},
    {dtype::f64, "F64", 8},
};
}  // namespace detail

/// The format's name of t: "F32", "BF16", ...
constexpr std::string_view to_string(dtype t) {
    for (const auto& row : detail::dtype_table)
        if (row.type == t) return row.name;
    return "?";
}

/// Bytes per element.
constexpr std::size_t size_of(dtype t) {
    for (const auto& row : detail::dtype_table)
        if (row.type == t) return row.size;
    return 0;
}

/// The dtype named s ("F32"), or nullopt for a name the format does not define.
constexpr std::optional<dtype> parse_dtype(std::string_view s) {
    for (const auto& row : detail::dtype_table)
        if (row.name == s) return row.type;
    return std::nullopt;
}

namespace detail {
template <class T>
constexpr std::optional<dtype> dtype_of_impl() {
    if constexpr (std::is_same_v<T, float>) return dtype::f32;
    else if constexpr (std::is_same_v<T, double>) return dtype::f64;
    else if constexpr (std::is_same_v<T, bool>) return dtype::boolean;
    else if constexpr (std::is_same_v<T, std::int8_t>) return dtype::i8;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return dtype::u8;
    else if constexpr (std::is_same_v<T, std::int16_t>) return dtype::i16;
    else if constexpr (std::is_same_v<T, std::uint16_t>) return dtype::u16;
    else if constexpr (std::is_same_v<T, std::int32_t>) return dtype::i32;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return dtype::u32;
    else if constexpr (std::is_same_v<T, std::int64_t>) return dtype::i64;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return dtype::u64;
    else return std::nullopt;
}
}  // namespace detail

/// C++ element types with a safetensors dtype of the same size and representation.
template <class T>
concept element = detail::dtype_of_impl<std::remove_cv_t<T>>().has_value() &&
                  sizeof(T) == size_of(*detail::dtype_of_impl<std::remove_cv_t<T>>());

/// The dtype that stores T: dtype_of<float> == dtype::f32.
template <element T>
inline constexpr dtype dtype_of = *detail::dtype_of_impl<std::remove_cv_t<T>>();

/// A header longer than this is refused before anything is allocated for it.
inline constexpr std::uint64_t max_header_size = 100'000'000;

// What one header may hold. They bound the memory that reading any file costs (a small
// multiple of the header's size, whatever it holds), and are checked as the header is
// parsed: a file beyond them is refused with a ctdl::error before the memory is spent.
inline constexpr std::size_t max_rank = 16;                          ///< dimensions of a tensor's shape
inline constexpr std::size_t max_tensors = 100'000;                  ///< tensors in one file
inline constexpr std::size_t max_metadata_entries = 100'000;         ///< entries of "__metadata__"
inline constexpr std::size_t max_name_bytes = 4096;                  ///< a tensor name or metadata key
inline constexpr std::size_t max_metadata_value_bytes = 64u << 20;   ///< one metadata value

/// The reserved header key for metadata.
inline constexpr std::string_view metadata_key = "__metadata__";

namespace detail {

/// Copies n elements of size elem_size from src (file byte order: little-endian) to dst
/// (native order), or the other way round: the operation is its own inverse.
inline void copy_little_endian(void* dst, const void* src, std::size_t n, std::size_t elem_size) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    if (n == 0) return;
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(d, s, n * elem_size);
    } else {
        for (std::size_t e = 0; e < n; ++e)
            for (std::size_t b = 0; b < elem_size; ++b)
                d[e * elem_size + b] = s[e * elem_size + elem_size - 1 - b];
    }
}

/// The float that the IEEE binary16 value with these bits is: exact for every finite value
/// (subnormal halves included), infinities kept, and a NaN's payload kept with its quiet
/// bit set, as IEEE conversion (F16C's vcvtph2ps, torch's .to(torch.float32)) does.
constexpr std::uint32_t f16_to_f32_bits(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
    const std::uint32_t exp = (h >> 10) & 0x1Fu;
    std::uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) return sign | 0x7F800000u | (mant ? 0x400000u | (mant << 13) : 0u);
    if (exp != 0) return sign | ((exp + 112u) << 23) | (mant << 13);  // 112 = 127 - 15
    if (mant == 0) return sign;                                       // signed zero
    // Subnormal: mant * 2^-24. Normalise: shift until the implicit bit (bit 10) is set.
    std::uint32_t e = 113;  // the exponent field of 2^-14, the smallest normal half
    while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --e;
    }
    return sign | (e << 23) | ((mant & 0x3FFu) << 13);
}

/// The float that the bfloat16 value with these bits is (its top 16 bits, exactly).
constexpr std::uint32_t bf16_to_f32_bits(std::uint16_t b) { return std::uint32_t{b} << 16; }

/// Widens n elements of a 16-bit float dtype (f16 or bf16; src in file byte order,
/// little-endian) to float.
inline void widen_to_float(float* dst, const void* src, std::size_t n, dtype type) {
    const auto* s = static_cast<const unsigned char*>(src);
    for (std::size_t i = 0; i < n; ++i) {
        const auto bits = static_cast<std::uint16_t>(s[2 * i] | (s[2 * i + 1] << 8));
        const std::uint32_t f = type == dtype::f16 ? f16_to_f32_bits(bits) : bf16_to_f32_bits(bits);
        dst[i] = std::bit_cast<float>(f);
    }
}

/// a * b, or nullopt on overflow.
constexpr std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
    if (a != 0 && b > UINT64_MAX / a) return std::nullopt;
    return a * b;
}

/// "[3, 4]"; cut to about 80 characters ("[1, 1, ...] (rank 90)") for a message.
inline std::string shape_string(const auto& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i) s += ", ";
        if (s.size() > 72) return s + "...] (rank " + std::to_string(shape.size()) + ")";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

}  // namespace detail
}  // namespace ctdl::safetensors
