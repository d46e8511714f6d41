#pragma once
// A hint for epilogues that read or write a buffer beside C (a layer's kept z, its
// activation's input): the GEMM hands out finished tiles down a column panel, so the rows
// a few below this segment, at the same columns, are the next tile's. Their lines are not
// in any cache by then (the buffer was last touched a whole pass earlier), and waiting for
// them was most of the time of the tanh-GELU derivative epilogue (perf, pretraining GPT).
// Prefetching past a buffer's end is harmless: a prefetch never faults. Nothing on the device.
#include <cstddef>

#include "hd.hpp"

namespace ctdl {

/// Rows ahead that epilogues prefetch: one register tile of the cpu GEMM's main shape.
inline constexpr std::size_t epilogue_prefetch_rows = 8;

/// Prefetches the cache lines of p[0, n) (for writing when Write).
template <bool Write = false, class T>
CTDL_HD inline void prefetch_span([[maybe_unused]] const T* p, [[maybe_unused]] std::size_t n) {
#if !defined(__CUDA_ARCH__)
    const char* b = reinterpret_cast<const char*>(p);
    for (std::size_t i = 0; i < n * sizeof(T); i += 64) __builtin_prefetch(b + i, Write ? 1 : 0, 3);
    if (n) __builtin_prefetch(b + n * sizeof(T) - 1, Write ? 1 : 0, 3);
#endif
}

}  // namespace ctdl
