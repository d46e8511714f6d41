#pragma once
// The epilogue as the cpu GEMM's kernels see it: a pointer to the caller's epilogue and one
// function that applies it to a finished block of C.
//
// ctdl::cpu_kernels::gemm is a template on the epilogue type, but only its few lines of
// dispatch are: it turns the epilogue into a tile_epilogue<T> and every kernel behind it
// (the packed driver and its micro-kernels, the dot-product, narrow and small-K paths) is
// compiled once per element type and shared by every epilogue of a program — every layer,
// trainable or frozen. Per epilogue type there remains run_tile_epilogue, a loop over the
// rows of a block. A kernel calls it once per finished block (a register tile, or a panel
// of rows), which is many multiply-adds, so the indirect call costs nothing measurable; it
// runs on the thread that computed the block, while the block is in L1.
#include <cstddef>
#include <type_traits>

#include "../epilogue.hpp"
#include "../isa.hpp"

namespace ctdl::inline CTDL_ISA_NS::cpu_kernels::detail {

/// ep over the mr × nr block at c (row stride ldc) whose first element is C[row, col],
/// in row segments of C's own layout; transc: the block is one of Cᵀ (c[j·ldc + i] is
/// C[col + j, row + i]). fn == nullptr: no epilogue.
template <class T>
struct tile_epilogue {
    using fn_type = void (*)(const void*, std::size_t, std::size_t, T*, std::size_t, std::size_t, std::size_t);
    fn_type fn = nullptr;
    const void* ep = nullptr;
    constexpr tile_epilogue() = default;
    constexpr tile_epilogue(epilogue::none) {}
    constexpr tile_epilogue(fn_type f, const void* e) : fn(f), ep(e) {}
    void operator()(std::size_t row, std::size_t col, T* c, std::size_t ldc, std::size_t mr, std::size_t nr) const {
        if (fn) fn(ep, row, col, c, ldc, mr, nr);
    }
};

template <class T, bool TransC, class Epilogue>
void run_tile_epilogue(const void* p, std::size_t row, std::size_t col, T* c, std::size_t ldc, std::size_t mr,
                       std::size_t nr) {
    const Epilogue& ep = *static_cast<const Epilogue*>(p);
    if constexpr (TransC) {
        for (std::size_t j = 0; j < nr; ++j) ep(col + j, row, c + j * ldc, mr);
    } else {
        // A full register tile's rows are one or two vectors of a known length: the inlined
        // segment loop then has no trip count to test and no masked remainder, and the
        // out-of-order core overlaps the rows' dependency chains (an exp and a division for
        // the tanh-GELU). Same arithmetic per element as the general loop.
        const auto rows = [&](auto width) {
            for (std::size_t i = 0; i < mr; ++i) ep(row + i, col, c + i * ldc, decltype(width)::value);
        };
        if (nr == 32) rows(std::integral_constant<std::size_t, 32>{});
        else if (nr == 16) rows(std::integral_constant<std::size_t, 16>{});
        else
            for (std::size_t i = 0; i < mr; ++i) ep(row + i, col, c + i * ldc, nr);
    }
}

/// The tile_epilogue of ep (which must outlive it): none becomes the empty one.
template <class T, bool TransC = false, class Epilogue>
tile_epilogue<T> erase_epilogue(const Epilogue& ep) {
    if constexpr (std::is_same_v<Epilogue, epilogue::none>) return {};
    else if constexpr (std::is_same_v<Epilogue, tile_epilogue<T>>) {
        static_assert(!TransC, "an erased epilogue is erased for C's own layout");
        return ep;
    } else return {&run_tile_epilogue<T, TransC, Epilogue>, &ep};
}

}  // namespace ctdl::cpu_kernels::detail
