#pragma once
// The mse op: Σ term_i / N over N elements in one Exec::sum, which writes the gradient as it
// goes when dp is not null (the math: math.hpp). The loss is the same bits with and without
// the gradient. One pass::reduce (loss only) or pass::map (with the gradient).
#include <cstddef>

#include "../../exec/pass_count.hpp"
#include "math.hpp"
#include "../../exec/isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::ops {

struct mse {
    /// Mean loss over n elements; dp may be null.
    template <class Exec, class T, class U>
    static double run(std::size_t n, const T* p, const U* y, T* dp) {
        record_pass(dp ? pass::map : pass::reduce);
        const T k = static_cast<T>(2.0 / static_cast<double>(n));
        return Exec::sum(n, mse_math::elements<T, U>{p, y, dp, k}) / static_cast<double>(n);
    }
};

}  // namespace ctdl::ops
