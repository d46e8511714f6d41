#pragma once
// ctdl::cpu: the host execution policy. It owns one process-wide fixed-size thread pool
// (default: one thread per hardware thread) and the library's own kernels, which live in
// exec/cpu/. A policy knows nothing about layers: it offers storage and kernels over
// raw, row-major memory.
#include <algorithm>
#include <cstddef>

#include "aligned_buffer.hpp"
#include "isa.hpp"
#include "cpu/gemm.hpp"
#include "cpu/map_rows.hpp"
#include "cpu/pool.hpp"
#include "cpu/reduce.hpp"
#include "pass_count.hpp"

namespace ctdl {
inline namespace CTDL_ISA_NS {

struct cpu {
    /// Storage of a tensor of T under this policy.
    template <class T>
    using buffer = aligned_buffer<T>;

    /// Elements can be read and written directly from host code (x(i, j)).
    static constexpr bool host_accessible = true;

    /// The process-wide pool every cpu kernel runs on.
    static thread_pool& pool() { return cpu_pool(); }
    /// Sets the number of threads cpu kernels use (>= 1). Results are bitwise reproducible
    /// for a given thread count.
    static void set_threads(std::size_t n) { pool().resize(n); }
    static std::size_t threads() { return pool().size(); }

    // ------------------------------------------------ primitives (shared with ctdl::device)

    /// f(i) for i in [0, n), split statically over the pool; serial when the work (n times
    /// `work`, the elements one f(i) touches) is small.
    template <class F>
    static void for_each_index(std::size_t n, const F& f, std::size_t work = 1) {
        auto body = [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) f(i);
        };
        if (n < 2 || n * work < parallel_work) body(0, n);
        else pool().parallel_for(n, body);
    }
    /// Below this much work (elements touched) for_each_index runs on the calling thread.
    static constexpr std::size_t parallel_work = std::size_t{1} << 14;
    /// Adjacent columns one task of a column reduction sums together (ops/common/policy_traits.hpp).
    static constexpr std::size_t column_tile = 64;
    /// Σ f(i) over [0, n), in double, in the order of ctdl::device::sum: [0, n) cut into 256
    /// contiguous chunks fixed by n alone (chunk c is [n c / 256, n (c + 1) / 256)), each
    /// summed in index order, then the 256 partial sums added in chunk order. The result is
    /// therefore bitwise the same on any number of threads. f(i) is called exactly once for
    /// each i, so f may also write element i of an output (a loss's gradient). The chunks are
    /// split statically over the pool, or all run on the calling thread when the work (n times
    /// `work`, the elements one f(i) touches) is small.
    template <class F>
    static double sum(std::size_t n, const F& f, std::size_t work = 1) {
        if (n == 0) return 0.0;
        constexpr std::size_t chunks = 256;
        auto chunk = [&](std::size_t c) {
            const std::size_t b = n * c / chunks, e = n * (c + 1) / chunks;
            double s = 0;
            for (std::size_t i = b; i < e; ++i) s += static_cast<double>(f(i));
            return s;
        };
        double s = 0;
        if (n <= chunks) {  // one element or none per chunk: the same bits as the chunks
            for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(f(i));
            return s;
        }
        if (n * work < parallel_work || threads() == 1) {
            for (std::size_t c = 0; c < chunks; ++c) s += chunk(c);
            return s;
        }
        double partial[chunks];
        pool().parallel_for(chunks, [&](std::size_t c0, std::size_t c1) {
            for (std::size_t c = c0; c < c1; ++c) partial[c] = chunk(c);
        });
        for (double v : partial) s += v;
        return s;
    }
    template <class T>
    static void copy_to_host(const T* src, T* dst, std::size_t n) {
        std::copy_n(src, n, dst);
    }
    template <class T>
    static void copy_from_host(const T* src, T* dst, std::size_t n) {
        std::copy_n(src, n, dst);
    }
    template <class T>
    static void copy(const T* src, T* dst, std::size_t n) {
        record_pass(pass::copy);
        std::copy_n(src, n, dst);
    }

    // ------------------------------------------------ kernels (row-major raw memory)

    /// C = op(A) op(B) (or C += ...), then ep on each finished row segment of C.
    template <trans TA, trans TB, class T, class Epilogue = epilogue::none>
    static void gemm(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
                     std::size_t ldb, T* c, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}) {
        cpu_kernels::gemm<TA, TB>(m, n, k, a, lda, b, ldb, c, ldc, accumulate, ep, pool());
    }

    /// out[r, c] = f(in0[r, c], ...), then ep on each row.
    template <class T, class F, class Epilogue, class... In>
    static void map_rows(std::size_t rows, std::size_t cols, T* out, const F& f, const Epilogue& ep,
                         const In*... in) {
        cpu_kernels::map_rows(rows, cols, out, f, ep, in...);
    }

    /// out[c] (+)= sum over rows of in[r, c] (a bias gradient).
    template <class T>
    static void sum_cols(std::size_t rows, std::size_t cols, const T* in, T* out, bool accumulate = false) {
        cpu_kernels::sum_cols(rows, cols, in, out, accumulate, pool());
    }
};

}  // namespace CTDL_ISA_NS
}  // namespace ctdl
