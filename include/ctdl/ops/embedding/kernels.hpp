#pragma once
// The embedding ops, each a generic kernel over the policy's primitives (the math is one
// line each, so it sits in the functors):
//   embedding_gather    y[r, c] = W[id[r], c]; first counts the ids outside [0, vocab)
//                       (Exec::sum) and, if there are any, returns their count having
//                       written nothing (the layer names the first in its error)
//   embedding_scatter   dW[v, c] (+)= Σ_{r: id[r] = v} dy[r, c]: one task per column of W,
//                       rows in order, so the sum is deterministic without atomics
//   position_add        y[b, t, c] = x[b, t, c] + P[t, c]
//   position_sum        dP[t, c] (+)= Σ_b dy[b, t, c] (rows t >= seq of P get 0, or keep
//                       their value when accumulating)
#include <cstddef>
#include <cstdint>

#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace embedding_detail {

template <class Id>
CTDL_HD bool outside(Id id, std::size_t vocab) {
    return id < Id(0) || static_cast<std::size_t>(id) >= vocab;
}

template <class Id>
struct invalid_id {
    const Id* ids;
    std::size_t vocab;
    CTDL_HD double operator()(std::size_t r) const { return outside(ids[r], vocab) ? 1.0 : 0.0; }
};
template <class T, class Id>
struct gather {
    const Id* ids;
    const T* w;
    T* out;
    std::size_t width;
    CTDL_HD void operator()(std::size_t i) const {
        out[i] = w[static_cast<std::size_t>(ids[i / width]) * width + i % width];
    }
};
template <class T, class Id>
struct scatter_column {
    const Id* ids;
    const T* dy;
    T* gw;
    std::size_t tokens, width, vocab;
    bool accumulate;
    CTDL_HD void operator()(std::size_t c) const {
        if (!accumulate)
            for (std::size_t v = 0; v < vocab; ++v) gw[v * width + c] = T(0);
        for (std::size_t r = 0; r < tokens; ++r) gw[static_cast<std::size_t>(ids[r]) * width + c] += dy[r * width + c];
    }
};
template <class T>
struct add_position {
    const T *x, *p;
    T* out;
    std::size_t period;  // seq · width
    CTDL_HD void operator()(std::size_t i) const { out[i] = x[i] + p[i % period]; }
};
template <class T>
struct add_position_at {
    const T *x, *p;
    const std::int32_t* pos;
    T* out;
    std::size_t width;
    CTDL_HD void operator()(std::size_t i) const {
        out[i] = x[i] + p[static_cast<std::size_t>(pos[i / width]) * width + i % width];
    }
};
template <class T>
struct sum_over_batch {
    const T* dy;
    T* gp;
    std::size_t batch, period;  // period: seq · width
    bool accumulate;
    CTDL_HD void operator()(std::size_t i) const {
        if (i >= period) {  // positions this input does not reach
            if (!accumulate) gp[i] = T(0);
            return;
        }
        T s = accumulate ? gp[i] : T(0);
        for (std::size_t b = 0; b < batch; ++b) s += dy[b * period + i];
        gp[i] = s;
    }
};

}  // namespace embedding_detail

struct embedding_gather {
    /// Returns the number of ids outside [0, vocab); y is written only when it is 0.
    template <class Exec, class T, class Id>
    static std::size_t run(std::size_t tokens, std::size_t width, std::size_t vocab, const Id* ids, const T* w, T* y) {
        record_pass(pass::reduce);
        const double bad = Exec::sum(tokens, embedding_detail::invalid_id<Id>{ids, vocab});
        if (bad != 0.0) return static_cast<std::size_t>(bad);
        record_pass(pass::gather);
        Exec::for_each_index(tokens * width, embedding_detail::gather<T, Id>{ids, w, y, width});
        return 0;
    }
};

struct embedding_scatter {
    template <class Exec, class T, class Id>
    static void run(std::size_t tokens, std::size_t width, std::size_t vocab, const Id* ids, const T* dy, T* gw,
                    bool accumulate) {
        record_pass(pass::gather);
        Exec::for_each_index(width, embedding_detail::scatter_column<T, Id>{ids, dy, gw, tokens, width, vocab, accumulate},
                             tokens);
    }
};

struct position_add {
    template <class Exec, class T>
    static void run(std::size_t batch, std::size_t seq, std::size_t width, const T* x, const T* p, T* y) {
        record_pass(pass::map);
        Exec::for_each_index(batch * seq * width, embedding_detail::add_position<T>{x, p, y, seq * width});
    }
};

/// y[r] = x[r] + p[pos[r]] for rows r of width columns (a decoding step's positions).
struct position_add_at {
    template <class Exec, class T>
    static void run(std::size_t rows, std::size_t width, const T* x, const T* p, const std::int32_t* pos, T* y) {
        record_pass(pass::map);
        Exec::for_each_index(rows * width, embedding_detail::add_position_at<T>{x, p, pos, y, width});
    }
};

struct position_sum {
    template <class Exec, class T>
    static void run(std::size_t batch, std::size_t seq, std::size_t max_seq, std::size_t width, const T* dy, T* gp,
                    bool accumulate) {
        record_pass(pass::reduce);
        Exec::for_each_index(max_seq * width, embedding_detail::sum_over_batch<T>{dy, gp, batch, seq * width, accumulate},
                             batch);
    }
};

}  // namespace ctdl::inline CTDL_ISA_NS::ops
