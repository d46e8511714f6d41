#pragma once
// The open customization point through which every op runs under an execution policy.
//
//   ctdl::launch<ops::layer_norm_forward, Exec>(rows, cols, x, w, b, y, mean, rstd, eps);
//
// An op is a tag type in ctdl::ops (include/ctdl/ops/<op>/) with a generic kernel,
// `template <class Exec, class... Args> static R run(Args...)`, written once over the
// policy's primitives (for_each_index, sum, map_rows, sum_cols, gemm) with CTDL_HD functors,
// so it runs on the cpu pool and on the device system alike. kernel<Op, Exec> is that
// generic kernel unless the op's folder specialises it for one policy, where a kernel of
// that policy's own (vectorized, tiled) is measurably faster over the same math. Adding an
// op therefore touches no policy: policies know memory, copies, their threads or stream,
// GEMM, maps and reductions, never a layer.
#include <utility>

namespace ctdl {

/// How policy Exec runs op Op: Op's generic kernel, unless specialised for Exec.
template <class Op, class Exec>
struct kernel {
    template <class... Args>
    static decltype(auto) run(Args&&... args) {
        return Op::template run<Exec>(std::forward<Args>(args)...);
    }
};

/// Runs op Op under policy Exec.
template <class Op, class Exec, class... Args>
decltype(auto) launch(Args&&... args) {
    return kernel<Op, Exec>::run(std::forward<Args>(args)...);
}

}  // namespace ctdl
