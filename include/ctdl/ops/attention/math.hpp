#pragma once
// Causal scaled dot-product attention for one (batch, head): the math, written once, that the
// generic kernels of kernels.hpp run under every policy (the cpu policy's tiled kernel,
// cpu_tiles.hpp, is the same math with its sums in another order).
//
// qkv holds rows [T, 3D] (q | k | v, head h at columns h·hd .. h·hd + hd of each third).
// For query i and keys j ≤ i:
//   s_ij = scale · q_i · k_j,   P_i = softmax_j(s_i),   o_i = Σ_j P_ij v_j
// Backward, from dO:
//   dP_ij = dO_i · v_j,   dV_j = Σ_i P_ij dO_i,   dS_ij = P_ij (dP_ij - Σ_j' P_ij' dP_ij'),
//   dQ_i = scale Σ_j dS_ij k_j,   dK_j = scale Σ_i dS_ij q_i
// One task owns one (batch, head): it writes only its own slices, so there are no races
// and the result does not depend on how tasks are spread over threads.
#include <cmath>
#include <cstddef>

#include "../../core/math.hpp"
#include "../../exec/hd.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops::attention_math {

struct dims {
    std::size_t batch, seq, heads, head_dim, width;  // width = heads · head_dim
};

/// Where task bh = b · heads + h finds its head: q, k, v (rows at stride 3 · width) inside
/// a qkv-shaped buffer, and its columns of an attention-shaped one ([T, width]).
template <class T>
struct head_slices {
    T *q, *k, *v;
};
template <class T>
CTDL_HD head_slices<T> qkv_slices(const dims& d, std::size_t bh, T* qkv) {
    T* q = qkv + bh / d.heads * d.seq * 3 * d.width + bh % d.heads * d.head_dim;
    return {q, q + d.width, q + 2 * d.width};
}
template <class T>
CTDL_HD T* att_slice(const dims& d, std::size_t bh, T* att) {
    return att + bh / d.heads * d.seq * d.width + bh % d.heads * d.head_dim;
}

/// Forward for task bh = b · heads + h. p: [seq, seq] probabilities of this task (kept for backward).
template <class T>
CTDL_HD void forward(const dims& d, std::size_t bh, T scale, const T* qkv, T* p, T* att) {
    const std::size_t ld = 3 * d.width;
    const auto [q0, k0, v0] = qkv_slices(d, bh, qkv);
    T* o0 = att_slice(d, bh, att);
    for (std::size_t i = 0; i < d.seq; ++i) {
        const T* qi = q0 + i * ld;
        T* pi = p + i * d.seq;
        T m = T(-1e30);
        for (std::size_t j = 0; j <= i; ++j) {
            const T* kj = k0 + j * ld;
            T s = 0;
            for (std::size_t c = 0; c < d.head_dim; ++c) s += qi[c] * kj[c];
            s *= scale;
            pi[j] = s;
            m = s > m ? s : m;
        }
        T z = 0;
        for (std::size_t j = 0; j <= i; ++j) z += (pi[j] = math::exp(pi[j] - m));
        const T inv = T(1) / z;
        for (std::size_t j = 0; j <= i; ++j) pi[j] *= inv;
        for (std::size_t j = i + 1; j < d.seq; ++j) pi[j] = T(0);
        T* oi = o0 + i * d.width;
        for (std::size_t c = 0; c < d.head_dim; ++c) oi[c] = T(0);
        for (std::size_t j = 0; j <= i; ++j) {
            const T* vj = v0 + j * ld;
            const T w = pi[j];
            for (std::size_t c = 0; c < d.head_dim; ++c) oi[c] += w * vj[c];
        }
    }
}

/// Backward for task bh: from datt (the gradient at the attention output) into dqkv.
/// scratch: [seq] values of this task.
template <class T>
CTDL_HD void backward(const dims& d, std::size_t bh, T scale, const T* qkv, const T* p, const T* datt, T* dqkv,
                      T* scratch) {
    const std::size_t ld = 3 * d.width;
    const auto [q0, k0, v0] = qkv_slices(d, bh, qkv);
    const auto [dq0, dk0, dv0] = qkv_slices(d, bh, dqkv);
    const T* do0 = att_slice(d, bh, datt);
    for (std::size_t i = 0; i < d.seq; ++i)
        for (std::size_t c = 0; c < d.head_dim; ++c) dq0[i * ld + c] = dk0[i * ld + c] = dv0[i * ld + c] = T(0);
    for (std::size_t i = 0; i < d.seq; ++i) {
        const T* pi = p + i * d.seq;
        const T* doi = do0 + i * d.width;
        T* dp = scratch;
        T dot = 0;
        for (std::size_t j = 0; j <= i; ++j) {
            const T* vj = v0 + j * ld;
            T s = 0;
            for (std::size_t c = 0; c < d.head_dim; ++c) s += doi[c] * vj[c];
            dp[j] = s;
            dot += s * pi[j];
            T* dvj = dv0 + j * ld;
            const T w = pi[j];
            for (std::size_t c = 0; c < d.head_dim; ++c) dvj[c] += w * doi[c];
        }
        const T* qi = q0 + i * ld;
        T* dqi = dq0 + i * ld;
        for (std::size_t j = 0; j <= i; ++j) {
            const T ds = pi[j] * (dp[j] - dot) * scale;
            const T* kj = k0 + j * ld;
            T* dkj = dk0 + j * ld;
            for (std::size_t c = 0; c < d.head_dim; ++c) {
                dqi[c] += ds * kj[c];
                dkj[c] += ds * qi[c];
            }
        }
    }
}

}  // namespace ctdl::ops::attention_math
