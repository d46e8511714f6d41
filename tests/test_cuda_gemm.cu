// ctdl::device::gemm on CUDA (cuBLASLt) against a host reference: every transposition,
// odd sizes, leading dimensions wider than the rows, pointers off cuBLASLt's preferred
// alignment, accumulation, k = 0, float and double, and each way an epilogue runs (none,
// epilogue::bias, a fused form cuBLASLt applies itself, a functor run after the product).
#include <catch2/catch.hpp>
#include <ctdl/exec/device.hpp>

#include <thrust/device_vector.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace {

using ctdl::trans;
namespace ep = ctdl::epilogue;

/// c = 2c + row - col: an epilogue cuBLASLt does not know (run after the product).
struct custom_epilogue {
    template <class T>
    CTDL_HD void operator()(std::size_t row, std::size_t col0, T* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) c[j] = T(2) * c[j] + T(row) - T(col0 + j);
    }
};

/// act(c + b) as a functor that also states its fused form (as linear's epilogue does).
template <class T>
struct bias_act_epilogue {
    const T* b;
    ep::activation act;
    CTDL_HD void operator()(std::size_t, std::size_t col0, T* c, std::size_t len) const {
        for (std::size_t j = 0; j < len; ++j) c[j] = apply(c[j] + (b ? b[col0 + j] : T(0)));
    }
    CTDL_HD T apply(T v) const {
        if (act == ep::activation::relu) return v > T(0) ? v : T(0);
        if (act == ep::activation::gelu_tanh)
            return T(0.5) * v * (T(1) + std::tanh(T(0.7978845608028654) * (v + T(0.044715) * v * v * v)));
        return v;
    }
    ep::fused_form<T> fused() const { return {b, act}; }
};

template <class T>
std::vector<T> random_vector(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> d(-1, 1);
    std::vector<T> v(n);
    for (auto& x : v) x = T(d(g));
    return v;
}

enum class which { none, bias, custom, relu, gelu, bias_act_none };

/// One product on the device and on the host; returns the largest error relative to the
/// largest reference element.
template <trans TA, trans TB, class T>
double run_case(std::size_t m, std::size_t n, std::size_t k, std::size_t pad, std::size_t offset, bool accumulate,
                which e) {
    const std::size_t ar = TA == trans::n ? m : k, ac = TA == trans::n ? k : m;
    const std::size_t br = TB == trans::n ? k : n, bc = TB == trans::n ? n : k;
    const std::size_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
    const auto ha = random_vector<T>(offset + ar * lda, 1), hb = random_vector<T>(offset + br * ldb, 2);
    const auto hc0 = random_vector<T>(offset + m * ldc, 3), hbias = random_vector<T>(offset + n, 4);
    thrust::device_vector<T> da(ha), db(hb), dc(hc0), dbias(hbias);
    const T* a = thrust::raw_pointer_cast(da.data()) + offset;
    const T* b = thrust::raw_pointer_cast(db.data()) + offset;
    T* c = thrust::raw_pointer_cast(dc.data()) + offset;
    const T* bias = thrust::raw_pointer_cast(dbias.data()) + offset;

    auto call = [&](const auto& epi) { ctdl::device::gemm<TA, TB>(m, n, k, a, lda, b, ldb, c, ldc, accumulate, epi); };
    switch (e) {
        case which::none: call(ep::none{}); break;
        case which::bias: call(ep::bias<T>{bias}); break;
        case which::custom: call(custom_epilogue{}); break;
        case which::relu: call(bias_act_epilogue<T>{bias, ep::activation::relu}); break;
        case which::gelu: call(bias_act_epilogue<T>{bias, ep::activation::gelu_tanh}); break;
        case which::bias_act_none: call(bias_act_epilogue<T>{nullptr, ep::activation::none}); break;
    }
    std::vector<T> got(dc.size());
    thrust::copy(dc.begin(), dc.end(), got.begin());

    double worst = 0, scale = 1e-30;
    std::vector<double> want(m * n);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
            double s = accumulate ? double(hc0[offset + i * ldc + j]) : 0.0;
            for (std::size_t p = 0; p < k; ++p) {
                const double av = TA == trans::n ? ha[offset + i * lda + p] : ha[offset + p * lda + i];
                const double bv = TB == trans::n ? hb[offset + p * ldb + j] : hb[offset + j * ldb + p];
                s += av * bv;
            }
            T v = T(s);
            T* pv = &v;
            switch (e) {
                case which::none: break;
                case which::bias: v += hbias[offset + j]; break;
                case which::custom: custom_epilogue{}(i, j, pv, 1); break;
                case which::relu: bias_act_epilogue<T>{hbias.data() + offset, ep::activation::relu}(i, j, pv, 1); break;
                case which::gelu:
                    bias_act_epilogue<T>{hbias.data() + offset, ep::activation::gelu_tanh}(i, j, pv, 1);
                    break;
                case which::bias_act_none: break;
            }
            want[i * n + j] = v;
            scale = std::max(scale, std::abs(double(v)));
        }
    for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j)
            worst = std::max(worst, std::abs(double(got[offset + i * ldc + j]) - want[i * n + j]));
        for (std::size_t j = n; j < ldc; ++j)  // padding untouched
            if (got[offset + i * ldc + j] != hc0[offset + i * ldc + j]) return 1e30;
    }
    return worst / scale;
}

template <class T>
double tolerance() {
    return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
void all_forms(std::size_t m, std::size_t n, std::size_t k, std::size_t pad, std::size_t offset, bool acc, which e) {
    INFO("m n k = " << m << " " << n << " " << k << ", pad " << pad << ", offset " << offset << ", accumulate "
                    << acc << ", epilogue " << int(e));
    // cuBLASLt's fused GELU approximates tanh; how closely is what this test reports.
    const double tol = e == which::gelu ? 1e-3 : tolerance<T>();
    CHECK(run_case<trans::n, trans::n, T>(m, n, k, pad, offset, acc, e) < tol);
    CHECK(run_case<trans::n, trans::t, T>(m, n, k, pad, offset, acc, e) < tol);
    CHECK(run_case<trans::t, trans::n, T>(m, n, k, pad, offset, acc, e) < tol);
    CHECK(run_case<trans::t, trans::t, T>(m, n, k, pad, offset, acc, e) < tol);
}

struct size3 {
    std::size_t m, n, k;
};
const size3 sizes[] = {{1, 1, 1}, {7, 13, 5}, {64, 10, 256}, {33, 65, 17}, {64, 256, 784}, {128, 128, 128}};

}  // namespace

TEST_CASE("cuda gemm: float, every transposition and size, no epilogue") {
    for (auto s : sizes)
        for (bool acc : {false, true}) all_forms<float>(s.m, s.n, s.k, 0, 0, acc, which::none);
}

TEST_CASE("cuda gemm: wide leading dimensions and unaligned pointers") {
    for (auto s : sizes) {
        all_forms<float>(s.m, s.n, s.k, 3, 0, false, which::none);
        all_forms<float>(s.m, s.n, s.k, 0, 1, true, which::bias);
        all_forms<float>(s.m, s.n, s.k, 5, 3, false, which::relu);
    }
}

TEST_CASE("cuda gemm: epilogues, fused and after the product") {
    for (auto s : sizes)
        for (which e : {which::bias, which::custom, which::relu, which::gelu, which::bias_act_none})
            for (bool acc : {false, true}) all_forms<float>(s.m, s.n, s.k, 0, 0, acc, e);
}

TEST_CASE("cuda gemm: double") {
    for (auto s : sizes)
        for (which e : {which::none, which::bias, which::custom, which::relu})
            all_forms<double>(s.m, s.n, s.k, 1, 1, e == which::custom, e);
}

TEST_CASE("cuda gemm: k = 0 leaves C (accumulate) or zeroes it, then the epilogue") {
    all_forms<float>(5, 7, 0, 0, 0, false, which::none);
    all_forms<float>(5, 7, 0, 0, 0, true, which::none);
    all_forms<float>(5, 7, 0, 2, 1, false, which::custom);
    all_forms<float>(5, 7, 0, 0, 0, true, which::relu);
}

TEST_CASE("cuda gemm: no new plans or device memory after warm-up") {
    auto round = [] {
        all_forms<float>(64, 256, 784, 0, 0, false, which::relu);
        all_forms<float>(64, 10, 256, 0, 0, true, which::custom);
    };
    round();
    auto& ctx = ctdl::device_cuda::cublaslt_context::current();
    const std::size_t plans = ctx.plan_count();
    std::size_t free0 = 0, free1 = 0, total = 0;
    // The test's own buffers come and go; cudaMalloc returns their memory to the same pool.
    REQUIRE(cudaMemGetInfo(&free0, &total) == cudaSuccess);
    round();
    REQUIRE(cudaMemGetInfo(&free1, &total) == cudaSuccess);
    CHECK(ctx.plan_count() == plans);
    CHECK(free1 == free0);
}

TEST_CASE("cuda errors: ctdl::error names the call and the status") {
    try {
        CTDL_CUDA_CHECK(cudaErrorInvalidValue);
        FAIL("no exception");
    } catch (const ctdl::error& e) {
        const std::string what = e.what();
        CHECK(what.find("cudaErrorInvalidValue") != std::string::npos);
    }
    try {
        ctdl::device_cuda::check(CUBLAS_STATUS_NOT_SUPPORTED, "cublasLtMatmul(...)");
        FAIL("no exception");
    } catch (const ctdl::error& e) {
        const std::string what = e.what();
        CHECK(what.find("cublasLtMatmul(...)") != std::string::npos);
        CHECK(what.find("CUBLAS_STATUS_NOT_SUPPORTED") != std::string::npos);
    }
}
