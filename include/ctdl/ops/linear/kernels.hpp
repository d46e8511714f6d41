#pragma once
// The linear op: y = ep(x Wᵀ) over rows of x, W [out, in] in PyTorch's layout, as one
// GEMM of the policy (math.hpp: the epilogue ep); or, for a weight stored [in, out] (the
// layout of transformers' Conv1D: nn::weight_layout::in_out), y = ep(x W), run_in_out.
//
// A policy may also run it from a packed copy of W, for frozen forwards at small batches
// where the GEMM is a stream over the weights. Its kernel<ops::linear_forward, Exec> then
// states (ops/linear/cpu.hpp):
//   template <class T, class P = T> static constexpr bool packs(rows)   whether a pack of elements P
//                                                                         (T, or a storage type such as
//                                                                         ctdl::bf16) runs at rows
//   template <class T, class P = T> static constexpr std::size_t packed_size(out, in)  its elements
//   template <class T> static void pack(out, in, w, dst)                 writes the pack (dst: P*)
//   static bool use_packed()                                             whether to run from it now
//   run_packed(rows, out, in, x, packed, y, ep)                          y from the pack, equal bit for
//                                                                         bit to run(...) on W
//   template <class T> static void pack_in_out(out, in, w, dst)          the same pack from W [in, out]
// and ops::linear_packs<Exec, T>(rows) asks for it.
#include <cstddef>
#include <type_traits>

#include "../../exec/epilogue.hpp"
#include "../../exec/isa.hpp"
#include "../../exec/kernel.hpp"
#include "layout.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

struct linear_forward {
    /// W [out, in]: y = ep(x Wᵀ).
    template <class Exec, class T, class Ep>
    static void run(std::size_t rows, std::size_t out, std::size_t in, const T* x, const T* w, T* y, const Ep& ep) {
        Exec::template gemm<trans::n, trans::t>(rows, out, in, x, in, w, in, y, out, false, ep);
    }
    /// W [in, out] (transformers' Conv1D): y = ep(x W).
    template <class Exec, class T, class Ep>
    static void run_in_out(std::size_t rows, std::size_t out, std::size_t in, const T* x, const T* w, T* y,
                           const Ep& ep) {
        Exec::template gemm<trans::n, trans::n>(rows, out, in, x, in, w, out, y, out, false, ep);
    }
};

/// How kernel<linear_forward, Exec> runs a weight of layout L: its run for out_in, and for
/// in_out its own run_in_out if it states one (the cpu's), else the generic kernel's.
template <nn::weight_layout L, class Exec, class T, class Ep>
void run_linear_forward(std::size_t rows, std::size_t out, std::size_t in, const T* x, const T* w, T* y,
                        const Ep& ep) {
    using K = kernel<linear_forward, Exec>;
    if constexpr (L == nn::weight_layout::out_in) K::run(rows, out, in, x, w, y, ep);
    else if constexpr (requires { K::run_in_out(rows, out, in, x, w, y, ep); }) K::run_in_out(rows, out, in, x, w, y, ep);
    else linear_forward::run_in_out<Exec>(rows, out, in, x, w, y, ep);
}

/// Whether policy Exec runs linear_forward for T from a weight packed in elements P (T, or a
/// narrower storage type such as ctdl::bf16) at this many rows (for a weight of layout L: an
/// in_out one needs the policy's pack_in_out).
template <class Exec, class T, nn::weight_layout L = nn::weight_layout::out_in, class P = T>
constexpr bool linear_packs(std::size_t rows) {
    using K = kernel<linear_forward, Exec>;
    if constexpr (L == nn::weight_layout::in_out &&
                  !requires(const T* w, P* dst) { K::template pack_in_out<T>(std::size_t{}, std::size_t{}, w, dst); })
        return false;
    else if constexpr (!requires(const T* w, P* dst) { K::template pack<T>(std::size_t{}, std::size_t{}, w, dst); })
        return false;
    else if constexpr (requires { K::template packs<T, P>(std::size_t{}); })
        return K::template packs<T, P>(rows);
    else if constexpr (std::is_same_v<P, T> && requires { K::template packs<T>(std::size_t{}); })
        return K::template packs<T>(rows);
    else
        return false;
}

}  // namespace ctdl::inline CTDL_ISA_NS::ops
