#pragma once
// The cpu policy's linear op: the generic GEMM, and, for frozen forwards at batch ≤ 4 on
// AVX-512 (float and double), a packed weight: packed once (cpu_kernels::pack_dot), each
// group of 4 output columns one contiguous stream in the order the kernel reads it, and
// y computed from it (cpu_kernels::gemm_packed), equal bit for bit to the GEMM on W.
// A weight stored [in, out] (nn::conv1d) is transposed into the same pack when it is made
// (pack_in_out), so a batch-1 decode streams it as it streams an [out, in] one; its result
// is then that of x·(Wᵀ)ᵀ by dot products: equal to the unpacked in_out GEMM to rounding,
// not bit for bit (that GEMM sums in the tiled kernel's order).
#include <algorithm>
#include <cstddef>
#include <memory>
#include <utility>

#include "../../exec/cpu.hpp"
#include "../../exec/kernel.hpp"
#include "kernels.hpp"

namespace ctdl {

template <>
struct kernel<ops::linear_forward, cpu> {
    template <class... Args>
    static void run(Args&&... args) {
        ops::linear_forward::run<cpu>(std::forward<Args>(args)...);
    }

    template <class T>
    static constexpr bool packs(std::size_t rows) {
        return cpu_kernels::packs_small_batch<T> && rows <= cpu_kernels::packed_max_rows;
    }
    /// Whether a layer that holds a pack should run from it now: on one thread. (Measured on
    /// the MLP at batch 1: one thread 6.6 us unpacked, 5.9 us packed; two threads, each
    /// streaming its half of the weights from its own L2, 3.6 us unpacked but 4.6 us packed.)
    static bool use_packed() { return cpu::threads() == 1; }
    template <class T>
    static constexpr std::size_t packed_size(std::size_t out, std::size_t in) {
        return cpu_kernels::packed_size<T>(out, in);
    }
#if defined(__AVX512F__)
    template <class T>
    static void pack(std::size_t out, std::size_t in, const T* w, T* dst) {
        cpu_kernels::pack_dot(out, in, w, in, dst);
    }
    /// W [in, out]: transposed once into [out, in], then packed as above. The transpose goes
    /// 16 rows of the result at a time, in 16 × 16 tiles: each 64-byte line of W is read once
    /// and the 16 rows are written in order. (Element by element, every write missed the
    /// cache, and packing GPT-2 small's Conv1D weights was most of an inference binary's
    /// time to its first token; benchmarks/run_ttft.sh.)
    template <class T>
    static void pack_in_out(std::size_t out, std::size_t in, const T* w, T* dst) {
        constexpr std::size_t tile = 16;
        const std::unique_ptr<T[]> t(new T[out * in]);  // every element is written below
        for (std::size_t o0 = 0; o0 < out; o0 += tile)
            for (std::size_t i0 = 0; i0 < in; i0 += tile) {
                const std::size_t o1 = std::min(o0 + tile, out), i1 = std::min(i0 + tile, in);
                for (std::size_t o = o0; o < o1; ++o)
                    for (std::size_t i = i0; i < i1; ++i) t[o * in + i] = w[i * out + o];
            }
        cpu_kernels::pack_dot(out, in, t.get(), in, dst);
    }
    template <class T, class Ep>
    static void run_packed(std::size_t rows, std::size_t out, std::size_t in, const T* x, const T* packed, T* y,
                           const Ep& ep) {
        cpu_kernels::gemm_packed(rows, out, in, x, in, packed, y, out, false, ep, cpu::pool());
    }
#endif
};

}  // namespace ctdl
