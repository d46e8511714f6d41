#pragma once
// map_rows: out[r, c] = f(in0[r, c], in1[r, c], ...) over a [rows, cols] block, then the
// epilogue ep(r, 0, &out[r, 0], cols) on each finished row while it is hot in cache (the
// same epilogue protocol as gemm). One pass; rows are split statically over the pool, so
// results do not depend on the thread count.
#include <cstddef>

#include "../pass_count.hpp"
#include "pool.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels {

template <class T, class F, class Epilogue, class... In>
void map_rows(std::size_t rows, std::size_t cols, T* out, const F& f, const Epilogue& ep, const In*... in) {
    record_pass(pass::map);
    auto body = [&](std::size_t r0, std::size_t r1) {
        for (std::size_t r = r0; r < r1; ++r) {
            T* o = out + r * cols;
            const std::size_t base = r * cols;
            for (std::size_t c = 0; c < cols; ++c) o[c] = f(in[base + c]...);
            ep(r, std::size_t{0}, o, cols);
        }
    };
    if (rows * cols < (std::size_t{1} << 15) || rows < 2)
        body(0, rows);
    else
        cpu_pool().parallel_for(rows, body);
}

}  // namespace ctdl::cpu_kernels
