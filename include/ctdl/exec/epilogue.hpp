#pragma once
// What every policy's GEMM and row kernels share: transposition flags and epilogues.
//
// An epilogue is called once for every finished element of a kernel's output, in row
// segments of contiguous columns: ep(row, col0, &C[row, col0], len). Layers fuse their
// bias, activation and activation derivative into the GEMMs this way.
#include <cstddef>

#include "hd.hpp"

namespace ctdl {

enum class trans { n, t };

namespace epilogue {

/// No epilogue.
struct none {
    template <class T>
    CTDL_HD void operator()(std::size_t, std::size_t, T*, std::size_t) const {}
};

/// c[j] += b[col0 + j]: a bias over the columns of C (a linear layer's output features).
template <class T>
struct bias {
    const T* b;
    CTDL_HD void operator()(std::size_t, std::size_t col0, T* c, std::size_t len) const {
        const T* bb = b + col0;
        for (std::size_t j = 0; j < len; ++j) c[j] += bb[j];
    }
};

/// What an epilogue computes, for GEMMs that can apply it themselves (cuBLASLt's fused
/// epilogues): c = act(c + bias), the bias over C's columns (nullptr: none). An epilogue
/// type says so with a member `epilogue::fused_form<T> fused() const`; none and bias<T> are
/// known. Without one, or when it answers activation::custom, the GEMM calls the functor.
enum class activation { none, relu, gelu_tanh, custom };

template <class T>
struct fused_form {
    const T* bias = nullptr;
    activation act = activation::custom;
};

}  // namespace epilogue

}  // namespace ctdl
