#pragma once
// The process-wide thread pool that every cpu kernel runs on.
#include <cstddef>

#include "../thread_pool.hpp"

namespace ctdl {

/// The pool cpu kernels use (default: one thread per hardware thread).
inline thread_pool& cpu_pool() {
    static thread_pool p;
    return p;
}

}  // namespace ctdl
