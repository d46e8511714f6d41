#pragma once
// Where to take sample prompts from a token sequence (e.g. a validation split), whatever
// its length:
//
//   const auto val = ds.tokens(ctdl::data::split::validation);
//   for (const auto [offset, length] : ctdl::data::spread_prompts(val.size(), 3, T))
//       generate<T>(net, {val.begin() + offset, val.begin() + offset + length}, ...);
//
// Every range lies inside the sequence: a sequence shorter than the prompt length gives
// prompts of its whole length, and prompts near its end start earlier instead of running
// past it.
#include <algorithm>
#include <cstddef>
#include <vector>

namespace ctdl::data {

/// Tokens [offset, offset + length) of a sequence.
struct token_range {
    std::size_t offset = 0;
    std::size_t length = 0;
    friend bool operator==(const token_range&, const token_range&) = default;
};

/// `count` ranges of min(max_length, n) tokens within a sequence of n tokens, spread evenly:
/// range i starts at i · (n / count), or at n - length where that would run past the end.
/// Offsets do not decrease; ranges do not overlap when n >= count · max_length. Empty when
/// n, count or max_length is 0.
inline std::vector<token_range> spread_prompts(std::size_t n, std::size_t count, std::size_t max_length) {
    std::vector<token_range> out;
    if (n == 0 || count == 0 || max_length == 0) return out;
    const std::size_t length = std::min(max_length, n);
    const std::size_t stride = n / count;
    out.reserve(count);
    for (std::size_t i = 0; i < count; ++i) out.push_back({std::min(i * stride, n - length), length});
    return out;
}

}  // namespace ctdl::data
