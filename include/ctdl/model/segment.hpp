#pragma once
// segment: one contiguous run of trainable parameters and where its gradients live.
//
// A trainable model keeps one flat parameter buffer and one flat gradient buffer. Its
// `gradient_segments` (a constexpr std::array<segment, N>, model/parameters.hpp) say which
// parameter ranges are trainable: parameters [param_offset, param_offset + size) have their
// gradients at [grad_offset, grad_offset + size). The optimizers (optim/segment.hpp) touch
// only these.
#include <cstddef>

namespace ctdl {

struct segment {
    std::size_t param_offset = 0;
    std::size_t grad_offset = 0;
    std::size_t size = 0;

    friend constexpr bool operator==(const segment&, const segment&) = default;
};

}  // namespace ctdl
