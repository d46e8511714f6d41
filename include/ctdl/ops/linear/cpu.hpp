#pragma once
// The cpu policy's linear op: the generic GEMM, and, for frozen forwards at batch ≤ 4 on
// AVX-512 (float and double), a packed weight: packed once (cpu_kernels::pack_dot), each
// group of 4 output columns one contiguous stream in the order the kernel reads it, and
// y computed from it (cpu_kernels::gemm_packed), equal bit for bit to the GEMM on W.
// A weight stored [in, out] (nn::conv1d) is transposed into the same pack when it is made
// (pack_in_out), so a batch-1 decode streams it as it streams an [out, in] one; its result
// is then that of x·(Wᵀ)ᵀ by dot products: equal to the unpacked in_out GEMM to rounding,
// not bit for bit (that GEMM sums in the tiled kernel's order).
//
// A decoding session may keep its packs in bf16 instead (P = ctdl::bf16: infer::bf16_decoder),
// on every ISA and at any number of rows: cpu_kernels::pack_dot_bf16 rounds each weight to
// nearest (ties to even) into the same layout, [out, in] and [in, out] alike, and
// cpu_kernels::gemm_packed_bf16 widens it to float in the kernel (exec/cpu/gemm_bf16.hpp).
#include <algorithm>
#include <cstddef>
#include <memory>
#include <type_traits>
#include <utility>

#include "../../core/bf16.hpp"
#include "../../exec/cpu.hpp"
#include "../../exec/cpu/gemm_bf16.hpp"
#include "../../exec/kernel.hpp"
#include "kernels.hpp"

namespace ctdl {

template <>
struct kernel<ops::linear_forward, cpu> {
    template <class... Args>
    static void run(Args&&... args) {
        ops::linear_forward::run<cpu>(std::forward<Args>(args)...);
    }

    /// Whether a pack of elements P runs T's product at rows: a T pack (P = T) on AVX-512 at
    /// up to 4 rows; a bf16 pack of float weights on every ISA at any number of rows.
    template <class T, class P = T>
    static constexpr bool packs(std::size_t rows) {
        if constexpr (std::is_same_v<P, bf16>) return std::is_same_v<T, float>;
        else if constexpr (std::is_same_v<P, T>)
            return cpu_kernels::packs_small_batch<T> && rows <= cpu_kernels::packed_max_rows;
        else return false;
    }
    /// Whether a layer that holds a pack should run from it now: on one thread. (Measured on
    /// the MLP at batch 1: one thread 6.6 us unpacked, 5.9 us packed; two threads, each
    /// streaming its half of the weights from its own L2, 3.6 us unpacked but 4.6 us packed.)
    static bool use_packed() { return cpu::threads() == 1; }
    /// Elements (of P) of the pack of an [out, in] weight.
    template <class T, class P = T>
    static constexpr std::size_t packed_size(std::size_t out, std::size_t in) {
        if constexpr (std::is_same_v<P, bf16>) return cpu_kernels::packed_size_bf16(out, in);
        else return cpu_kernels::packed_size<T>(out, in);
    }
    /// The bf16 pack of W [out, in], each weight rounded to nearest, ties to even.
    template <class T>
        requires std::is_same_v<T, float>
    static void pack(std::size_t out, std::size_t in, const T* w, bf16* dst) {
        cpu_kernels::pack_dot_bf16(out, in, w, in, 1, dst);
    }
    /// The same from W [in, out] (read in place, column by column).
    template <class T>
        requires std::is_same_v<T, float>
    static void pack_in_out(std::size_t out, std::size_t in, const T* w, bf16* dst) {
        cpu_kernels::pack_dot_bf16(out, in, w, 1, out, dst);
    }
    /// y from a bf16 pack: the weights widened to float in the kernel, x and every sum float.
    template <class Ep>
    static void run_packed(std::size_t rows, std::size_t out, std::size_t in, const float* x, const bf16* packed,
                           float* y, const Ep& ep) {
        cpu_kernels::gemm_packed_bf16(rows, out, in, x, in, packed, y, out, false, ep, cpu::pool());
    }

    /// A frozen weight on a gradient path (frozen_weight_packs.hpp): the GEMM's own pack of
    /// its B operand, made once (cpu_kernels::pack_b), for y = x·op(W) with op(W) k × n
    /// (op = ᵀ for tb = t), wherever the GEMM packs B itself at these rows; the product from
    /// it (cpu_kernels::gemm_packed_b) equals the GEMM on W bit for bit.
    template <class T, trans TB>
    static constexpr bool packs_b(std::size_t rows, std::size_t n, std::size_t k) {
        return cpu_kernels::packs_b<trans::n, TB, T>(rows, n, k);
    }
    template <class T>
    static constexpr std::size_t packed_b_size(std::size_t k, std::size_t n) {
        return cpu_kernels::packed_b_size<T>(k, n);
    }
    template <class T>
    static void pack_b(trans tb, std::size_t k, std::size_t n, const T* w, std::size_t ldw, T* dst) {
        cpu_kernels::pack_b<T>(tb, k, n, w, ldw, dst);
    }
    /// y [rows, n] = ep(x [rows, k] · op(W)) from pack_b's pack of op(W); x and y dense.
    template <class T, class Ep>
    static void run_packed_b(std::size_t rows, std::size_t n, std::size_t k, const T* x, const T* packed, T* y,
                             const Ep& ep) {
        cpu_kernels::gemm_packed_b<trans::n, T>(rows, n, k, x, k, packed, y, n, false, ep, cpu::pool());
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
