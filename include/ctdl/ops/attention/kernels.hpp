#pragma once
// The causal-attention ops, one generic kernel each over the policy's for_each_index, one
// task per (batch, head) (math.hpp: the math and where a task finds its slices):
//   attention_forward   att, and p: [tasks, seq, seq] probabilities (kept for backward)
//   attention_backward  dqkv from datt; scratch: [tasks, seq, seq] (this kernel uses the
//                       first [tasks, seq] of it; the cpu kernel of cpu.hpp, dS, all of it)
// Each is one pass::attention. The cpu policy runs its own register-tiled kernel over the
// same math (cpu.hpp, which layer.hpp includes).
#include <cstddef>

#include "../../exec/hd.hpp"
#include "../../exec/pass_count.hpp"
#include "math.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

namespace attention_detail {

template <class T>
struct forward_tasks {
    attention_math::dims d;
    T scale;
    const T* qkv;
    T *p, *att;
    CTDL_HD void operator()(std::size_t bh) const {
        attention_math::forward(d, bh, scale, qkv, p + bh * d.seq * d.seq, att);
    }
};

template <class T>
struct backward_tasks {
    attention_math::dims d;
    T scale;
    const T *qkv, *p, *datt;
    T *dqkv, *scratch;
    CTDL_HD void operator()(std::size_t bh) const {
        attention_math::backward(d, bh, scale, qkv, p + bh * d.seq * d.seq, datt, dqkv, scratch + bh * d.seq);
    }
};

/// The elements one task touches, the cpu's hint for splitting tasks over threads.
inline std::size_t task_work(const attention_math::dims& d) { return d.seq * d.seq * d.head_dim; }

}  // namespace attention_detail

struct attention_forward {
    template <class Exec, class T>
    static void run(const attention_math::dims& d, T scale, const T* qkv, T* p, T* att) {
        record_pass(pass::attention);
        Exec::for_each_index(d.batch * d.heads, attention_detail::forward_tasks<T>{d, scale, qkv, p, att},
                             attention_detail::task_work(d));
    }
};

struct attention_backward {
    template <class Exec, class T>
    static void run(const attention_math::dims& d, T scale, const T* qkv, const T* p, const T* datt, T* dqkv,
                    T* scratch) {
        record_pass(pass::attention);
        Exec::for_each_index(d.batch * d.heads,
                             attention_detail::backward_tasks<T>{d, scale, qkv, p, datt, dqkv, scratch},
                             attention_detail::task_work(d));
    }
};

}  // namespace ctdl::ops
