#pragma once
// The linear op's epilogue: what a linear layer's forward GEMM does to each finished row
// segment, written once for every policy (CTDL_HD).
//   z = acc + b (no b without Bias),  y = chain(z),  and chain'(z) kept (row stride ld) when
//   dz != null: the backward pass's factor, computed here where it shares the chain's work
//   (the tanh-GELU's exponential), so the backward epilogue is one multiply per element.
#include <cstddef>
#include <type_traits>

#include "../../exec/epilogue.hpp"
#include "../../exec/hd.hpp"
#include "../../exec/isa.hpp"
#include "../../exec/prefetch.hpp"
#include "../../nn/activation.hpp"
#include "../../nn/pointwise.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::linear_math {

/// A namespace-level type that depends only on what its code does, so every linear layer
/// with the same T, Bias and chain, trainable or frozen, shares its instantiations (of this
/// and of the GEMM paths it is passed to).
template <class T, bool Bias, class Chain>
struct forward_epilogue {
    const T* b;
    T* dz;  // chain'(z), or null
    std::size_t ld;
    CTDL_HD void operator()(std::size_t row, std::size_t col0, T* c, std::size_t len) const {
        // A loop without a branch inside for each case, which g++ vectorizes (a conditional
        // store in the loop kept it scalar: the tanh-GELU's epilogue was 40% of a GPT step).
        // The chain is applied to v in its register, not to z read back (that reload was a
        // third of the epilogue's time); the values are the same either way.
        if (dz) {
            T* dr = dz + row * ld + col0;
            prefetch_span<true>(dr + epilogue_prefetch_rows * ld, len);  // the next tile's (exec/prefetch.hpp)
            for (std::size_t j = 0; j < len; ++j) {
                T v = c[j];
                if constexpr (Bias) v += b[col0 + j];
                T d;
                c[j] = Chain::apply_with_derivative(v, d);
                dr[j] = d;
            }
        } else {
            for (std::size_t j = 0; j < len; ++j) {
                T v = c[j];
                if constexpr (Bias) v += b[col0 + j];
                c[j] = Chain::apply(v);
            }
        }
    }
    /// The chain in the vocabulary of fused GEMM epilogues (exec/epilogue.hpp), or custom.
    /// (tanh-GELU stays custom: a library's fused GELU is not held to ctdl's float tolerances.)
    static constexpr epilogue::activation fused_activation =
        nn::is_empty_chain<Chain>                    ? epilogue::activation::none
        : std::is_same_v<Chain, nn::chain<nn::relu>> ? epilogue::activation::relu
                                                     : epilogue::activation::custom;
    /// The same epilogue as a policy's GEMM with fused epilogues may run it: bias then the
    /// chain, when the chain is one it knows (none, relu) and z is not kept.
    epilogue::fused_form<T> fused() const {
        if (dz) return {};
        return {Bias ? b : nullptr, fused_activation};
    }
};

}  // namespace ctdl::inline CTDL_ISA_NS::ops::linear_math
