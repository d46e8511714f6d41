#pragma once
// Packing for the cpu GEMM (BLIS style).
//
// A block of op(A) (mc × kc) is copied into micro-panels of R rows: panel p holds
// op(A)[p·R + i, k] at [k·R + i], so the micro-kernel reads R consecutive values per k.
// A block of op(B) (kc × nc) is copied into micro-panels of R columns: panel p holds
// op(B)[k, p·R + j] at [k·R + j]. Rows/columns past the edge are zero, so edge tiles run
// the same kernel (the padding contributes exact zeros) and only their stores are clipped.
//
// Both are one routine: pack(x, rs, cs, rows, cols, R, dst) copies the rows × cols matrix
// x(i, k) = x[i·rs + k·cs] into panels of R "rows", with k the running (depth) index.
// op(A): i = row of C, k = depth.  op(B): i = column of C, k = depth.
#include <cstddef>
#include <cstring>

namespace ctdl::cpu_kernels::detail {

/// Panels of R along i, depth-major inside a panel: dst[p][k][r] = x[(p·R + r)·rs + k·cs].
/// `depth` = number of k. The contiguous direction of the source decides the loop order.
template <std::size_t R, class T>
void pack_panels(const T* x, std::size_t rs, std::size_t cs, std::size_t count, std::size_t depth, T* dst) {
    for (std::size_t p0 = 0; p0 < count; p0 += R) {
        const std::size_t r = count - p0 < R ? count - p0 : R;
        const T* src = x + p0 * rs;
        if (rs == 1) {
            // The panel's R values at each k are contiguous in the source: row copies.
            if (r == R) {
                for (std::size_t k = 0; k < depth; ++k) std::memcpy(dst + k * R, src + k * cs, R * sizeof(T));
            } else {
                for (std::size_t k = 0; k < depth; ++k) {
                    T* d = dst + k * R;
                    const T* s = src + k * cs;
                    std::size_t i = 0;
                    for (; i < r; ++i) d[i] = s[i];
                    for (; i < R; ++i) d[i] = T(0);
                }
            }
        } else {
            // Each of the R source rows is contiguous along k: a transpose. Blocks of 8 k
            // keep the R source streams and the destination lines in L1.
            constexpr std::size_t kb = 8;
            std::size_t k0 = 0;
            for (; k0 + kb <= depth; k0 += kb) {
                for (std::size_t i = 0; i < r; ++i) {
                    const T* s = src + i * rs + k0 * cs;
                    T* d = dst + k0 * R + i;
                    for (std::size_t k = 0; k < kb; ++k) d[k * R] = s[k * cs];
                }
                for (std::size_t i = r; i < R; ++i)
                    for (std::size_t k = 0; k < kb; ++k) dst[(k0 + k) * R + i] = T(0);
            }
            for (; k0 < depth; ++k0) {
                for (std::size_t i = 0; i < r; ++i) dst[k0 * R + i] = src[i * rs + k0 * cs];
                for (std::size_t i = r; i < R; ++i) dst[k0 * R + i] = T(0);
            }
        }
        dst += depth * R;
    }
}

}  // namespace ctdl::cpu_kernels::detail
