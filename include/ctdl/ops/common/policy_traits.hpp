#pragma once
// What generic kernels may ask of a policy beyond its primitives, each with a default for a
// policy that does not say.
#include <cstddef>
#include "../../exec/isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

/// Adjacent columns one task of a column reduction takes together: Exec::column_tile (the
/// cpu: a tile whose loop over the columns vectorizes), else 1 (one task per column, for a
/// policy with many threads).
template <class Exec>
inline constexpr std::size_t column_tile = [] {
    if constexpr (requires { Exec::column_tile; })
        return static_cast<std::size_t>(Exec::column_tile);
    else
        return std::size_t{1};
}();

}  // namespace ctdl::ops
