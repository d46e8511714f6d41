#pragma once
// Causal attention with a KV cache, for decoding (graph/decode.hpp): the rows of a step are
// tokens, row r being token pos[r] of sequence seq[r]. attention_decode first stores every
// row's key and value in the cache at (seq, head, pos), then each row's query attends to
// the keys 0 .. pos[r] of its own sequence: the rows of a prefill see each other causally,
// and a later step sees everything stored before it.
//
// cache: [batch, heads, max_seq, head_dim] for k and for v. One pass of scores per query
// with a running maximum (online softmax): no [seq, seq] scratch, the result equal to the
// whole-window forward of math.hpp up to rounding.
#include <cstddef>
#include <cstdint>

#include "../../core/math.hpp"
#include "../../exec/hd.hpp"
#include "../../exec/isa.hpp"
#include "../../exec/pass_count.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace attention_cache_math {

struct dims {
    std::size_t heads, head_dim, width, max_seq;  // width = heads · head_dim
};

template <class T>
CTDL_HD T* cache_row(const dims& d, T* cache, std::size_t s, std::size_t h, std::size_t t) {
    return cache + ((s * d.heads + h) * d.max_seq + t) * d.head_dim;
}

/// Task (r, h): row r's key and value of head h into the cache.
template <class T>
CTDL_HD void store(const dims& d, std::size_t task, const T* qkv, const std::int32_t* seq, const std::int32_t* pos,
                   T* k_cache, T* v_cache) {
    const std::size_t r = task / d.heads, h = task % d.heads;
    const T* k = qkv + r * 3 * d.width + d.width + h * d.head_dim;
    const T* v = k + d.width;
    const auto s = static_cast<std::size_t>(seq[r]), t = static_cast<std::size_t>(pos[r]);
    T* kc = cache_row(d, k_cache, s, h, t);
    T* vc = cache_row(d, v_cache, s, h, t);
    for (std::size_t c = 0; c < d.head_dim; ++c) {
        kc[c] = k[c];
        vc[c] = v[c];
    }
}

/// Task (r, h): o = softmax(scale · q kᵀ) v over the keys 0 .. pos[r] of row r's sequence.
template <class T>
CTDL_HD void attend(const dims& d, std::size_t task, T scale, const T* qkv, const std::int32_t* seq,
                    const std::int32_t* pos, const T* k_cache, const T* v_cache, T* att) {
    const std::size_t r = task / d.heads, h = task % d.heads;
    const T* q = qkv + r * 3 * d.width + h * d.head_dim;
    T* o = att + r * d.width + h * d.head_dim;
    const auto s = static_cast<std::size_t>(seq[r]), last = static_cast<std::size_t>(pos[r]);
    for (std::size_t c = 0; c < d.head_dim; ++c) o[c] = T(0);
    T m = T(-1e30), l = T(0);
    for (std::size_t t = 0; t <= last; ++t) {
        const T* kt = cache_row(d, k_cache, s, h, t);
        T sc = 0;
        for (std::size_t c = 0; c < d.head_dim; ++c) sc += q[c] * kt[c];
        sc *= scale;
        if (sc > m) {  // a new maximum: rescale what was summed so far
            const T f = math::exp(m - sc);
            l *= f;
            for (std::size_t c = 0; c < d.head_dim; ++c) o[c] *= f;
            m = sc;
        }
        const T w = math::exp(sc - m);
        l += w;
        const T* vt = cache_row(d, v_cache, s, h, t);
        for (std::size_t c = 0; c < d.head_dim; ++c) o[c] += w * vt[c];
    }
    const T inv = T(1) / l;
    for (std::size_t c = 0; c < d.head_dim; ++c) o[c] *= inv;
}

}  // namespace attention_cache_math

namespace attention_detail {

template <class T>
struct store_tasks {
    attention_cache_math::dims d;
    const T* qkv;
    const std::int32_t *seq, *pos;
    T *k, *v;
    CTDL_HD void operator()(std::size_t task) const { attention_cache_math::store(d, task, qkv, seq, pos, k, v); }
};
template <class T>
struct attend_tasks {
    attention_cache_math::dims d;
    T scale;
    const T* qkv;
    const std::int32_t *seq, *pos;
    const T *k, *v;
    T* att;
    CTDL_HD void operator()(std::size_t task) const {
        attention_cache_math::attend(d, task, scale, qkv, seq, pos, k, v, att);
    }
};

}  // namespace attention_detail

/// att [rows, width] from qkv [rows, 3 · width], through the KV cache (k_cache, v_cache).
struct attention_decode {
    template <class Exec, class T>
    static void run(const attention_cache_math::dims& d, std::size_t rows, T scale, const T* qkv,
                    const std::int32_t* seq, const std::int32_t* pos, T* k_cache, T* v_cache, T* att) {
        record_pass(pass::attention);
        Exec::for_each_index(rows * d.heads, attention_detail::store_tasks<T>{d, qkv, seq, pos, k_cache, v_cache},
                             2 * d.head_dim);
        Exec::for_each_index(rows * d.heads,
                             attention_detail::attend_tasks<T>{d, scale, qkv, seq, pos, k_cache, v_cache, att},
                             d.max_seq * d.head_dim);
    }
};

}  // namespace ctdl::inline CTDL_ISA_NS::ops
