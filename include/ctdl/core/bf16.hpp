#pragma once
// bfloat16 as a storage type: the top 16 bits of a float (sign, the 8 exponent bits, 7 of
// the 23 mantissa bits). Widening to float is exact (the bits shifted up by 16); narrowing a
// float rounds to the nearest bf16, ties to the one whose last mantissa bit is 0 (IEEE
// round-to-nearest-even, as torch's .to(torch.bfloat16) rounds). Infinities stay infinite; a
// finite float past the largest bf16's rounding range becomes infinite (the IEEE overflow of
// that rounding); a NaN stays a NaN (made quiet, its sign kept). Subnormals round like any
// other number.
//
// ctdl computes in float: bf16 is how a decoding session may keep its weights
// (infer::bf16_decoder), widened to float in the kernel that reads them.
#include <bit>
#include <cstdint>

namespace ctdl {

struct bf16 {
    std::uint16_t bits = 0;

    /// The bf16 with these bits.
    static constexpr bf16 from_bits(std::uint16_t b) { return bf16{b}; }
    /// The nearest bf16 to f, ties to even.
    static constexpr bf16 round(float f) {
        const std::uint32_t u = std::bit_cast<std::uint32_t>(f);
        if ((u & 0x7fffffffu) > 0x7f800000u)  // NaN: keep the sign and the top of the payload, quiet
            return bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
        // Adding 0x7fff rounds a remainder above half up and one below down; the last kept
        // bit added on top makes an exact half round up only from an odd mantissa.
        const std::uint32_t r = u + 0x7fffu + ((u >> 16) & 1u);
        return bf16{static_cast<std::uint16_t>(r >> 16)};
    }
    /// The float this bf16 is, exactly.
    constexpr float widen() const { return std::bit_cast<float>(std::uint32_t{bits} << 16); }

    friend constexpr bool operator==(bf16, bf16) = default;
};

/// f rounded to bf16 and widened again: the float a bf16 copy of f holds.
constexpr float round_to_bf16(float f) { return bf16::round(f).widen(); }

}  // namespace ctdl
