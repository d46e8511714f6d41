#pragma once
// The cpu policy's kernels for the attention ops: the register-tiled per-task kernels of
// cpu_tiles.hpp (the math of math.hpp, sums in another order), one task per (batch, head),
// over the cpu pool. Bitwise the same for any thread count.
#include <cstddef>

#include "../../exec/cpu.hpp"
#include "../../exec/kernel.hpp"
#include "../../exec/pass_count.hpp"
#include "cpu_tiles.hpp"
#include "kernels.hpp"

namespace ctdl {

template <>
struct kernel<ops::attention_forward, cpu> {
    template <class T>
    static void run(const ops::attention_math::dims& d, T scale, const T* qkv, T* p, T* att) {
        record_pass(pass::attention);
        cpu::pool().parallel_for(d.batch * d.heads, [&](std::size_t b0, std::size_t b1) {
            for (std::size_t bh = b0; bh < b1; ++bh)
                cpu_kernels::attention_forward(d, bh, scale, qkv, p + bh * d.seq * d.seq, att);
        });
    }
};

template <>
struct kernel<ops::attention_backward, cpu> {
    template <class T>
    static void run(const ops::attention_math::dims& d, T scale, const T* qkv, const T* p, const T* datt, T* dqkv,
                    T* scratch) {
        record_pass(pass::attention);
        cpu::pool().parallel_for(d.batch * d.heads, [&](std::size_t b0, std::size_t b1) {
            for (std::size_t bh = b0; bh < b1; ++bh)
                cpu_kernels::attention_backward(d, bh, scale, qkv, p + bh * d.seq * d.seq, datt, dqkv,
                                                scratch + bh * d.seq * d.seq);
        });
    }
};

}  // namespace ctdl
