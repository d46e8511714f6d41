#pragma once
// The packs of a frozen weight on a gradient path: a linear layer (or a tied head) whose
// weight does not train while something before it does (LoRA's base projections, the frozen
// blocks and head of a partly frozen model). Such a weight is read by two GEMMs every step,
// y = x·op(W) forward and dX = dZ·op'(W) backward, and each GEMM would copy it into its
// panel layout every time; here it is copied once per parameter change instead (the model's
// pack_for, as the inference packs), and both products run from the copies, equal bit for
// bit to the GEMMs on W (so training with and without them gives the same numbers).
//
// A policy offers it through kernel<ops::linear_forward, Exec> (the cpu's: ops/linear/cpu.hpp):
//   template <class T, trans TB> static constexpr bool packs_b(rows, n, k)   whether x·op(W) at rows
//                                                                             gains from a pack
//   template <class T> static constexpr std::size_t packed_b_size(k, n)      its elements
//   template <class T> static void pack_b(tb, k, n, w, ldw, dst)             writes it
//   run_packed_b(rows, n, k, x, packed, y, ep)                               y = ep(x·op(W)) from it
// On other policies (and in decoding sessions, whose rows vary) there are none.
//
// Memory: each pack is the weight's size (rounded up to whole panels), so a LoRA model keeps
// up to twice its frozen GEMM weights again, per activation storage (one per input shape).
#include <cstddef>

#include "../../exec/epilogue.hpp"
#include "../../exec/isa.hpp"
#include "../../exec/kernel.hpp"
#include "kernels.hpp"
#include "layout.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

/// Whether policy Exec packs op(W) (k × n, transposed when TB = t) for x·op(W) at rows.
template <class Exec, class T, trans TB>
constexpr bool frozen_packs_b(std::size_t rows, std::size_t n, std::size_t k) {
    using K = kernel<linear_forward, Exec>;
    if constexpr (requires { K::template packs_b<T, TB>(rows, n, k); }) return K::template packs_b<T, TB>(rows, n, k);
    else return false;
}

/// A weight W (layout L: [Out, In], or [In, Out] for in_out) read at Rows rows, frozen on a
/// gradient path where Active: forward y = x·op(W) (op(W) [In, Out]), backward dX = dZ·op'(W)
/// (op'(W) [Out, In]) where Backward. Holds the two pack pointers (the model owns the packs).
template <class Exec, class T, nn::weight_layout L, std::size_t Rows, std::size_t Out, std::size_t In, bool Active,
          bool Backward>
class frozen_weight_packs {
    using K = kernel<linear_forward, Exec>;
    static constexpr bool in_out = L == nn::weight_layout::in_out;
    static constexpr trans fwd_tb = in_out ? trans::n : trans::t, bwd_tb = in_out ? trans::t : trans::n;

public:
    static constexpr bool forward_packed = Active && frozen_packs_b<Exec, T, fwd_tb>(Rows, Out, In);
    static constexpr bool backward_packed = Active && Backward && frozen_packs_b<Exec, T, bwd_tb>(Rows, In, Out);
    static constexpr bool any = forward_packed || backward_packed;
    /// n elements rounded up to whole 64-byte lines (each pack starts on one).
    static constexpr std::size_t lines(std::size_t n) { return (n * sizeof(T) + 63) / 64 * 64 / sizeof(T); }

    static constexpr std::size_t elements() {
        std::size_t n = 0;
        if constexpr (forward_packed) n += lines(K::template packed_b_size<T>(In, Out));
        if constexpr (backward_packed) n += lines(K::template packed_b_size<T>(Out, In));
        return n;
    }
    /// Packs W (at w) into dst (elements() elements, 64-byte aligned).
    void pack([[maybe_unused]] const T* w, [[maybe_unused]] T* dst) {
        if constexpr (forward_packed) {  // op(W) [In, Out]: W [In, Out] as it is, or [Out, In] transposed
            K::template pack_b<T>(fwd_tb, In, Out, w, in_out ? Out : In, dst);
            fwd_ = dst;
            dst += lines(K::template packed_b_size<T>(In, Out));
        }
        if constexpr (backward_packed) {  // op'(W) [Out, In]
            K::template pack_b<T>(bwd_tb, Out, In, w, in_out ? Out : In, dst);
            bwd_ = dst;
        }
    }
    /// Forgets the packs: the GEMMs read W again.
    void clear() {
        fwd_ = {};
        bwd_ = {};
    }
    /// y = ep(x·op(W)) from the pack, when there is one (else false: the caller runs its GEMM).
    template <class Ep>
    bool forward(const T* x, T* y, const Ep& ep) const {
        return run<forward_packed>(fwd_, Out, In, x, y, ep);
    }
    /// dX = ep(dZ·op'(W)) from the pack, when there is one.
    template <class Ep>
    bool backward(const T* dz, T* dx, const Ep& ep) const {
        return run<backward_packed>(bwd_, In, Out, dz, dx, ep);
    }

private:
    template <bool Packed, class Pack, class Ep>
    static bool run([[maybe_unused]] Pack pack, [[maybe_unused]] std::size_t n, [[maybe_unused]] std::size_t k,
                    [[maybe_unused]] const T* a, [[maybe_unused]] T* c, [[maybe_unused]] const Ep& ep) {
        if constexpr (Packed) {
            if (pack) {
                K::run_packed_b(Rows, n, k, a, pack, c, ep);
                return true;
            }
        }
        return false;
    }

    [[no_unique_address]] std::conditional_t<forward_packed, const T*, std::nullptr_t> fwd_{};
    [[no_unique_address]] std::conditional_t<backward_packed, const T*, std::nullptr_t> bwd_{};
};

}  // namespace ctdl::inline CTDL_ISA_NS::ops
