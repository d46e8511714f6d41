#pragma once
// The checksum that ctdl::save writes into a snapshot's metadata, and every read checks:
//
//   "__metadata__": {"ctdl.checksum": "ctdl64x8:<16 lowercase hex digits>", ...}
//
// ctdl64x8 is a 64-bit hash of the data section (everything after the header), made to
// find corruption (a flipped bit, a truncated or spliced file), not to resist an attacker.
// It runs eight independent lanes over the data's 8-byte little-endian words, so a core
// hashes several GB/s (vectorised where the ISA multiplies 64-bit lanes; README, "Snapshots"):
//
//   P1 = 0x9E3779B185EBCA87, P2 = 0xC2B2AE3D27D4EB4F, P3 = 0x165667B19E3779F9
//   lane[i] = (i + 1) * P3                                        for i in 0..7
//   for each 64-byte block (the last one padded with zero bytes):  w = its 8 words
//       lane[i] = rotl64(lane[i] + w[i] * P2, 31) * P1
//   h = n (the byte count)
//   for i in 0..7: h = rotl64((h ^ fmix(lane[i])) * P1, 27)
//   hash = fmix(h),   fmix(x): x ^= x >> 33; x *= P2; x ^= x >> 29; x *= P3; x ^= x >> 32
//
// (all arithmetic modulo 2^64). The byte count enters the result, so zero padding and a
// truncated file both change it. tests/golden/check_ctdl_snapshot.py recomputes it in Python.
//
//   ctdl::detail::checksum64 h;  h.update(bytes);  std::uint64_t v = h.finish();
//   std::string s = ctdl::detail::checksum_string(v);          // "ctdl64x8:..."
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ctdl::detail {

/// The metadata key of the checksum, and its algorithm's name (the value's prefix).
inline constexpr std::string_view checksum_key = "ctdl.checksum";
inline constexpr std::string_view checksum_algorithm = "ctdl64x8";

/// The ctdl64x8 hash (above), fed in pieces of any size.
class checksum64 {
public:
    static constexpr std::uint64_t p1 = 0x9E3779B185EBCA87ull, p2 = 0xC2B2AE3D27D4EB4Full,
                                   p3 = 0x165667B19E3779F9ull;

    checksum64() {
        for (int i = 0; i < 8; ++i) lane_[i] = static_cast<std::uint64_t>(i + 1) * p3;
    }

    void update(std::span<const std::byte> bytes) { update(bytes.data(), bytes.size()); }
    void update(const void* data, std::size_t n) {
        const auto* p = static_cast<const unsigned char*>(data);
        total_ += n;
        if (used_) {  // complete the buffered block first
            const std::size_t k = n < 64 - used_ ? n : 64 - used_;
            std::memcpy(buffer_ + used_, p, k);
            used_ += k;
            p += k;
            n -= k;
            if (used_ < 64) return;
            blocks(buffer_, 1);
            used_ = 0;
        }
        blocks(p, n / 64);
        p += n / 64 * 64;
        n %= 64;
        if (n) std::memcpy(buffer_, p, n);
        used_ = n;
    }

    /// The hash of everything fed so far (the object is left as it was).
    std::uint64_t finish() const {
        checksum64 c = *this;
        if (c.used_) {
            std::memset(c.buffer_ + c.used_, 0, 64 - c.used_);
            c.blocks(c.buffer_, 1);
        }
        std::uint64_t h = total_;
        for (int i = 0; i < 8; ++i) h = std::rotl((h ^ fmix(c.lane_[i])) * p1, 27);
        return fmix(h);
    }

private:
    std::uint64_t lane_[8];
    unsigned char buffer_[64] = {};
    std::size_t used_ = 0;
    std::uint64_t total_ = 0;

    static constexpr std::uint64_t fmix(std::uint64_t x) {
        x ^= x >> 33;
        x *= p2;
        x ^= x >> 29;
        x *= p3;
        x ^= x >> 32;
        return x;
    }

    static std::uint64_t word(const unsigned char* p) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if constexpr (std::endian::native == std::endian::big) w = byteswap64(w);
        return w;
    }
    static constexpr std::uint64_t byteswap64(std::uint64_t w) {
        std::uint64_t r = 0;
        for (int i = 0; i < 8; ++i) r |= ((w >> (8 * i)) & 0xFF) << (56 - 8 * i);
        return r;
    }

    // The hot loop: eight independent lanes, each one multiply-rotate-multiply per word.
    void blocks(const unsigned char* p, std::size_t count) {
        std::uint64_t l[8];
        for (int i = 0; i < 8; ++i) l[i] = lane_[i];
        for (std::size_t b = 0; b < count; ++b, p += 64)
            for (int i = 0; i < 8; ++i) l[i] = std::rotl(l[i] + word(p + 8 * i) * p2, 31) * p1;
        for (int i = 0; i < 8; ++i) lane_[i] = l[i];
    }
};

/// The ctdl64x8 hash of bytes.
inline std::uint64_t checksum_of(std::span<const std::byte> bytes) {
    checksum64 h;
    h.update(bytes);
    return h.finish();
}

/// "ctdl64x8:" and 16 lowercase hex digits.
inline std::string checksum_string(std::uint64_t v) {
    std::string s(checksum_algorithm);
    s += ':';
    for (int i = 15; i >= 0; --i) s += "0123456789abcdef"[(v >> (4 * i)) & 0xF];
    return s;
}

/// The hash a checksum string holds, or nullopt if it is not exactly checksum_string's form.
inline std::optional<std::uint64_t> parse_checksum(std::string_view s) {
    if (s.size() != checksum_algorithm.size() + 17 || s.substr(0, checksum_algorithm.size()) != checksum_algorithm ||
        s[checksum_algorithm.size()] != ':')
        return std::nullopt;
    std::uint64_t v = 0;
    for (const char c : s.substr(checksum_algorithm.size() + 1)) {
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else return std::nullopt;
        v = (v << 4) | static_cast<std::uint64_t>(d);
    }
    return v;
}

}  // namespace ctdl::detail
