#pragma once
// ctdl::device: the execution policy on Thrust's device system.
//
// Under nvcc that is CUDA (tensors in GPU memory); a host compiler builds the same code for
// Thrust's OMP or CPP system (THRUST_DEVICE_SYSTEM), which is how machines without a GPU
// test it. The policy offers what is its own (memory, copies, GEMM, maps, reductions,
// for_each_index); every op runs through it from its folder under ops/ (exec/kernel.hpp), as
// a Thrust for_each over rows, columns or elements with a functor that runs on either side. Memory is not host-accessible: tensors move between
// policies with ctdl::to<Exec>(tensor).
#include <cmath>
#include <cstddef>
#include <cstring>

#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/functional.h>
#include <thrust/iterator/counting_iterator.h>

#include "device/buffer.hpp"
#include "device/gemm_cuda.hpp"
#include "epilogue.hpp"
#include "hd.hpp"
#include "pass_count.hpp"

namespace ctdl {

namespace device_kernels {

template <trans TA, trans TB, class T, class Epilogue>
struct gemm_rows {
    std::size_t n, k;
    const T* a;
    std::size_t lda;
    const T* b;
    std::size_t ldb;
    T* c;
    std::size_t ldc;
    bool accumulate;
    Epilogue ep;
    CTDL_HD void operator()(std::size_t i) const {
        T* ci = c + i * ldc;
        for (std::size_t j = 0; j < n; ++j) {
            T s = accumulate ? ci[j] : T(0);
            for (std::size_t p = 0; p < k; ++p) {
                const T av = TA == trans::n ? a[i * lda + p] : a[p * lda + i];
                const T bv = TB == trans::n ? b[p * ldb + j] : b[j * ldb + p];
                s += av * bv;
            }
            ci[j] = s;
        }
        ep(i, std::size_t{0}, ci, n);
    }
};

template <class T, class F, class Epilogue, class... In>
struct map_rows_fn {
    std::size_t cols;
    T* out;
    F f;
    Epilogue ep;
    thrust::tuple<const In*...> in;
    CTDL_HD void operator()(std::size_t r) const {
        T* o = out + r * cols;
        apply(r, o, std::index_sequence_for<In...>{});
        ep(r, std::size_t{0}, o, cols);
    }
    template <std::size_t... I>
    CTDL_HD void apply(std::size_t r, T* o, std::index_sequence<I...>) const {
        const std::size_t base = r * cols;
        for (std::size_t c = 0; c < cols; ++c) o[c] = f(thrust::get<I>(in)[base + c]...);
    }
};

template <class T>
struct sum_cols_fn {
    std::size_t rows, cols;
    const T* in;
    T* out;
    bool accumulate;
    CTDL_HD void operator()(std::size_t c) const {
        T s = accumulate ? out[c] : T(0);
        for (std::size_t r = 0; r < rows; ++r) s += in[r * cols + c];
        out[c] = s;
    }
};

/// partial[c] = Σ f(i) over chunk c of [0, n).
template <class F>
struct chunk_sum {
    std::size_t n, chunks;
    F f;
    double* partial;
    CTDL_HD void operator()(std::size_t c) const {
        const std::size_t b = n * c / chunks, e = n * (c + 1) / chunks;
        double s = 0;
        for (std::size_t i = b; i < e; ++i) s += static_cast<double>(f(i));
        partial[c] = s;
    }
};

}  // namespace device_kernels

struct device {
    template <class T>
    using buffer = device_buffer<T>;
    static constexpr bool host_accessible = false;

    // ------------------------------------------------ primitives

    /// f(i) for i in [0, n), in parallel on the device system.
    /// (`work`, the elements one f(i) touches, is the cpu's hint; every index is a thread here.)
    template <class F>
    static void for_each_index(std::size_t n, const F& f, std::size_t /*work*/ = 1) {
        if (n == 0) return;
        thrust::for_each_n(thrust::device, thrust::counting_iterator<std::size_t>(0), n, f);
    }
    /// Σ f(i) over [0, n), accumulated in double: 256 contiguous chunks fixed by n alone
    /// (chunk c is [n c / 256, n (c + 1) / 256)) summed in parallel, then their partial sums
    /// added in order on the host, so the result does not depend on the device system or its
    /// thread count, and the order is ctdl::cpu::sum's. f(i) is called exactly once for each
    /// i, so f may also write element i of an output (a loss's gradient). (`work` is the
    /// cpu's hint; every chunk is a thread here. Thrust's own reduce is avoided: its OMP
    /// system binds a reference to a null policy, which UBSan rightly reports.)
    template <class F>
    static double sum(std::size_t n, const F& f, std::size_t /*work*/ = 1) {
        if (n == 0) return 0.0;
        constexpr std::size_t chunks = 256;
        static thread_local device_buffer<double> partial(chunks);
        for_each_index(chunks, device_kernels::chunk_sum<F>{n, chunks, f, partial.data()});
        double host[chunks];
        copy_to_host(static_cast<const double*>(partial.data()), host, chunks);
        double s = 0;
        for (double v : host) s += v;
        return s;
    }
    template <class T>
    static void copy_to_host(const T* src, T* dst, std::size_t n) {
        if (n) thrust::copy_n(thrust::device_pointer_cast(src), n, dst);
    }
    template <class T>
    static void copy_from_host(const T* src, T* dst, std::size_t n) {
        if (n) thrust::copy_n(src, n, thrust::device_pointer_cast(dst));
    }
    template <class T>
    static void copy(const T* src, T* dst, std::size_t n) {
        record_pass(pass::copy);
        if (n) thrust::copy_n(thrust::device, thrust::device_pointer_cast(src), n, thrust::device_pointer_cast(dst));
    }

    // ------------------------------------------------ kernels (the cpu policy's interface)

    template <trans TA, trans TB, class T, class Epilogue = epilogue::none>
    static void gemm(std::size_t m, std::size_t n, std::size_t k, const T* a, std::size_t lda, const T* b,
                     std::size_t ldb, T* c, std::size_t ldc, bool accumulate = false, const Epilogue& ep = {}) {
        record_pass(pass::gemm);
#if CTDL_DEVICE_CUDA
        if constexpr (device_cuda::blas_type<T>)  // cuBLASLt, the epilogue fused or after it
            device_cuda::gemm<TA, TB>(m, n, k, a, lda, b, ldb, c, ldc, accumulate, ep);
        else
#endif
            for_each_index(m, device_kernels::gemm_rows<TA, TB, T, Epilogue>{n, k, a, lda, b, ldb, c, ldc, accumulate, ep});
    }

    template <class T, class F, class Epilogue, class... In>
    static void map_rows(std::size_t rows, std::size_t cols, T* out, const F& f, const Epilogue& ep,
                         const In*... in) {
        record_pass(pass::map);
        for_each_index(rows, device_kernels::map_rows_fn<T, F, Epilogue, In...>{cols, out, f, ep,
                                                                               thrust::make_tuple(in...)});
    }

    template <class T>
    static void sum_cols(std::size_t rows, std::size_t cols, const T* in, T* out, bool accumulate = false) {
        record_pass(pass::reduce);
        for_each_index(cols, device_kernels::sum_cols_fn<T>{rows, cols, in, out, accumulate});
    }
};

}  // namespace ctdl
