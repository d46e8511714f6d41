#pragma once
// The binary_cross_entropy_with_logits op: Σ term_i / N over N elements in one Exec::sum,
// which writes the gradient as it goes when dx is not null (the math: math.hpp). The loss
// is the same bits with and without the gradient. One pass::reduce (loss only) or
// pass::map (with the gradient).
#include <cstddef>

#include "../../exec/pass_count.hpp"
#include "math.hpp"
#include "../../exec/isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

struct binary_cross_entropy_with_logits {
    /// Mean loss over n elements; dx may be null.
    template <class Exec, class T, class U>
    static double run(std::size_t n, const T* x, const U* y, T* dx) {
        record_pass(dx ? pass::map : pass::reduce);
        const T inv_n = static_cast<T>(1.0 / static_cast<double>(n));
        // work 4: an exp and a log1p an element
        return Exec::sum(n, binary_cross_entropy_math::elements<T, U>{x, y, dx, inv_n}, 4) / static_cast<double>(n);
    }
};

}  // namespace ctdl::ops
