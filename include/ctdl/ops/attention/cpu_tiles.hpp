#pragma once
// Causal attention for the cpu policy (kernel<ops::attention_*, cpu>, cpu.hpp): the math of
// math.hpp (which the generic kernels run, on the device too) arranged as small
// register-tiled products per (batch, head) task (cpu_causal_products.hpp) and row passes.
//
// Per task, with n = seq, Q, K, V, O, dO rows [n, hd] inside qkv / att / datt, and P, dS
// [n, n] row-major (P exactly zero above the diagonal; dS zero above it up to the end of
// the diagonal's block of 16 keys, which is as far as any product reads):
//   forward   S = scale · Q Kᵀ   (lower triangle)
//             P_i = softmax_{j ≤ i}(S_i)
//             O = P V
//   backward  dV = Pᵀ dO
//             dP = dO Vᵀ         (lower triangle)
//             dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij') · scale
//             dQ = dS K,   dK = dSᵀ Q
//
// One task writes only its own slices and every sum runs in a fixed order, so results
// are bitwise the same for any thread count; and row i of a task is computed the same way
// whatever the sequence length, so a right-padded sequence gives the short one's outputs
// bitwise. Sums differ in order from math.hpp, so cpu and device agree to rounding,
// not bitwise.
#include <cstddef>

#include "../../core/math.hpp"
#include "../../exec/cpu/gemm_simd.hpp"
#include "../common/lanes.hpp"
#include "cpu_causal_products.hpp"
#include "math.hpp"
#include "../../exec/isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {

namespace attention_detail {

using detail::simd;
inline constexpr std::size_t key_block = causal::key_block;

/// The end of the scores causal::lower_scores writes in row i of an n-row task: the end of the
/// key block that holds the diagonal. Row passes run to it rather than to i + 1, so their
/// loops run over whole blocks of 16 (masked), without a scalar remainder.
inline std::size_t block_end(std::size_t i, std::size_t n) {
    const std::size_t e = (i / key_block + 1) * key_block;
    return e < n ? e : n;
}

/// Σ_{j < m} x[j] y[j] in the lanes of one vector register: whole vectors, then the
/// remainder as one vector padded with zeros, then the lanes pairwise. x must be zero in
/// [m, e): the remainder is read in place where the row's storage reaches a whole vector,
/// else copied; either way the order depends on m alone.
template <class T>
inline T row_dot(std::size_t m, std::size_t e, const T* x, const T* y) {
    using S = simd<T>;
    constexpr std::size_t w = S::width;
    typename S::reg acc = S::zero();
    alignas(64) T xt[w]{}, yt[w]{};
    for (std::size_t j = 0; j < m; j += w) {
        const T* xj = x + j;
        const T* yj = y + j;
        if (j + w > e) {  // the row ends inside this vector
            for (std::size_t l = 0; j + l < m; ++l) xt[l] = x[j + l], yt[l] = y[j + l];
            xj = xt;
            yj = yt;
        }
        acc = S::fma(S::load(xj), S::load(yj), acc);
    }
    S::store(xt, acc);
#pragma GCC unroll 8
    for (std::size_t h = w / 2; h > 0; h /= 2)
#pragma GCC unroll 8
        for (std::size_t l = 0; l < h; ++l) xt[l] += xt[l + h];
    return xt[0];
}

/// Row i of the scores s (e = block_end(i, n)) into probabilities in place:
/// P_ij = exp(s_ij − max) / Σ_{j' ≤ i} exp(s_ij' − max) for j ≤ i, exactly 0 after.
/// The exponentials and their sum share one loop: lane l of 16 sums the entries j ≡ l
/// (mod 16) in order, the lanes combine pairwise; entries after the diagonal add exact
/// zeros, so the sum depends on i alone.
template <class T>
void softmax_row(std::size_t i, std::size_t n, T* s) {
    constexpr std::size_t lanes = key_block;
    const std::size_t m = i + 1, e = block_end(i, n);
    const T mx = ops::row_max(s, m);
    T acc[lanes]{};
    std::size_t j0 = 0;
    for (; j0 + lanes <= e; j0 += lanes)
        for (std::size_t l = 0; l < lanes; ++l) {
            const T v = j0 + l < m ? math::exp(s[j0 + l] - mx) : T(0);
            s[j0 + l] = v;
            acc[l] += v;
        }
    for (std::size_t l = 0; j0 + l < e; ++l) {
        const T v = j0 + l < m ? math::exp(s[j0 + l] - mx) : T(0);
        s[j0 + l] = v;
        acc[l] += v;
    }
#pragma GCC unroll 8
    for (std::size_t h = lanes / 2; h > 0; h /= 2)
#pragma GCC unroll 8
        for (std::size_t l = 0; l < h; ++l) acc[l] += acc[l + h];
    const T inv = T(1) / acc[0];
    for (std::size_t j = 0; j < e; ++j) s[j] *= inv;
    for (std::size_t j = e; j < n; ++j) s[j] = T(0);
}

/// Row i of dP (in ds, up to block_end) into dS in place, with P_i (zero after the
/// diagonal): dS_ij = P_ij (dP_ij − Σ_j' P_ij' dP_ij') · scale; entries after the diagonal
/// become zeros, and those after block_end are left as they are (no product reads them).
template <class T>
void softmax_backward_row(std::size_t i, std::size_t n, const T* p, T* ds, T scale) {
    const std::size_t e = block_end(i, n);
    const T dot = row_dot(i + 1, e, p, static_cast<const T*>(ds));
    for (std::size_t j = 0; j < e; ++j) ds[j] = p[j] * (ds[j] - dot) * scale;
}

}  // namespace attention_detail

/// Forward for task bh = b · heads + h; p: this task's [seq, seq] probabilities.
template <class T>
void attention_forward(const ops::attention_math::dims& d, std::size_t bh, T scale, const T* qkv, T* p, T* att) {
    namespace ad = attention_detail;
    const std::size_t n = d.seq, hd = d.head_dim, ld = 3 * d.width;
    const auto [q0, k0, v0] = ops::attention_math::qkv_slices(d, bh, qkv);
    T* o0 = ops::attention_math::att_slice(d, bh, att);
    causal::lower_scores(n, hd, q0, ld, k0, ld, scale, p);
    for (std::size_t i = 0; i < n; ++i) ad::softmax_row(i, n, p + i * n);
    causal::lower_times(n, hd, static_cast<const T*>(p), v0, ld, o0, d.width);
}

/// Backward for task bh: from datt into this task's slices of dqkv (each written once).
/// ds: this task's [seq, seq] scratch.
template <class T>
void attention_backward(const ops::attention_math::dims& d, std::size_t bh, T scale, const T* qkv, const T* p,
                        const T* datt, T* dqkv, T* ds) {
    namespace ad = attention_detail;
    const std::size_t n = d.seq, hd = d.head_dim, ld = 3 * d.width;
    const auto [q0, k0, v0] = ops::attention_math::qkv_slices(d, bh, qkv);
    const auto [dq0, dk0, dv0] = ops::attention_math::qkv_slices(d, bh, dqkv);
    const T* do0 = ops::attention_math::att_slice(d, bh, datt);
    causal::lower_transposed_times(n, hd, p, do0, d.width, dv0, ld);  // dV = Pᵀ dO
    causal::lower_scores(n, hd, do0, d.width, v0, ld, T(1), ds);      // dP = dO Vᵀ
    for (std::size_t i = 0; i < n; ++i) ad::softmax_backward_row(i, n, p + i * n, ds + i * n, scale);  // dS
    const T* dsc = ds;
    causal::lower_times(n, hd, dsc, k0, ld, dq0, ld);              // dQ = dS K
    causal::lower_transposed_times(n, hd, dsc, q0, ld, dk0, ld);   // dK = dSᵀ Q
}

}  // namespace ctdl::cpu_kernels
