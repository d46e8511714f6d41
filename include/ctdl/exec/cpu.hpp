#pragma once
// ctdl::cpu: the host execution policy. It owns one process-wide fixed-size thread pool
// (default: one thread per hardware thread) and the library's own kernels, which live in
// exec/cpu/. A policy knows nothing about layers: it offers storage and kernels over
// raw, row-major memory.
#include <cstddef>

#include "aligned_buffer.hpp"
#include "pass_count.hpp"
#include "cpu/pool.hpp"

namespace ctdl {

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
};

}  // namespace ctdl
