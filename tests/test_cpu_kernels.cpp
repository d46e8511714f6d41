#include <catch2/catch.hpp>
#include "kernel_checks.hpp"
#include <ctdl/core/math.hpp>
#include <ctdl/core/random.hpp>
#include <ctdl/exec/cpu/elementwise.hpp>
#include <ctdl/exec/cpu/reduce.hpp>
#include <ctdl/exec/pass_count.hpp>
#include <ctdl/exec/thread_pool.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

namespace k = ctdl::cpu_kernels;

namespace {

constexpr std::size_t lengths[] = {0, 1, 7, 33, 1000, 100000};
using ctdl_test::bitwise_equal;
using ctdl_test::matrices;
using ctdl_test::max_rel_err;
using ctdl_test::random_vector;
using ctdl_test::tolerance;

struct pools {
    ctdl::thread_pool one{1}, two{2}, three{3};
};
pools& test_pools() {
    static pools p;
    return p;
}

}  // namespace

// ---------------------------------------------------------------- elementwise

TEMPLATE_TEST_CASE("map applies f elementwise with any number of inputs", "", float, double) {
    using T = TestType;
    auto& p = test_pools();
    for (std::size_t n : lengths) {
        INFO("n = " << n);
        const auto a = random_vector<T>(n, 1), b = random_vector<T>(n, 2);
        const auto c = random_vector<double>(n, 3);
        std::vector<std::uint8_t> mask(n);
        for (std::size_t i = 0; i < n; ++i) mask[i] = a[i] > 0;

        // One input.
        std::vector<T> o1(n), o2(n, T(9)), o3(n, T(9));
        const auto relu = [](T x) { return x > 0 ? x : T(0); };
        k::map(p.one, n, o1.data(), relu, a.data());
        k::map(p.two, n, o2.data(), relu, a.data());
        k::map(p.three, n, o3.data(), relu, a.data());
        for (std::size_t i = 0; i < n; ++i) REQUIRE(o1[i] == std::max(a[i], T(0)));
        CHECK(bitwise_equal(o1, o2));
        CHECK(bitwise_equal(o1, o3));

        // Three inputs of mixed types: T, T, double, and a byte mask (four pointers).
        const auto f = [](T x, T y, double z, std::uint8_t m) { return m ? static_cast<T>(x * y + z) : y; };
        k::map(p.one, n, o1.data(), f, a.data(), b.data(), c.data(), mask.data());
        k::map(p.two, n, o2.data(), f, a.data(), b.data(), c.data(), mask.data());
        std::vector<double> ref(n);
        for (std::size_t i = 0; i < n; ++i) ref[i] = mask[i] ? double(a[i]) * double(b[i]) + c[i] : double(b[i]);
        CHECK(max_rel_err(o1, ref) <= tolerance<T>);
        CHECK(bitwise_equal(o1, o2));

        // No inputs at all: a generator.
        k::map(p.two, n, o2.data(), [] { return T(3); });
        CHECK(std::all_of(o2.begin(), o2.end(), [](T v) { return v == T(3); }));

        // The default pool and an explicit one agree.
        k::map(n, o1.data(), [](T x, T y) { return x - y; }, a.data(), b.data());
        k::map(p.two, n, o2.data(), [](T x, T y) { return x - y; }, a.data(), b.data());
        for (std::size_t i = 0; i < n; ++i) REQUIRE(o1[i] == a[i] - b[i]);
        CHECK(bitwise_equal(o1, o2));
    }
}

TEMPLATE_TEST_CASE("map_inplace and a map whose output is one of its inputs", "", float, double, int) {
    using T = TestType;
    auto& p = test_pools();
    for (std::size_t n : lengths) {
        INFO("n = " << n);
        std::vector<T> x0(n), y(n);
        for (std::size_t i = 0; i < n; ++i) x0[i] = static_cast<T>(i % 11), y[i] = static_cast<T>(i % 5);
        auto x1 = x0, x2 = x0, x3 = x0;
        const auto axpy = [](T x, T v) { return static_cast<T>(x + T(2) * v); };
        k::map_inplace(p.one, n, x1.data(), axpy, y.data());
        k::map_inplace(p.two, n, x2.data(), axpy, y.data());
        k::map(p.two, n, x3.data(), axpy, x3.data(), y.data());  // out == first input
        for (std::size_t i = 0; i < n; ++i) REQUIRE(x1[i] == static_cast<T>(x0[i] + T(2) * y[i]));
        CHECK(bitwise_equal(x1, x2));
        CHECK(bitwise_equal(x1, x3));
        k::map_inplace(n, x1.data(), [](T v) { return static_cast<T>(-v); });
        for (std::size_t i = 0; i < n; ++i) REQUIRE(x1[i] == static_cast<T>(-x2[i]));
    }
}

// ---------------------------------------------------------------- reductions

TEMPLATE_TEST_CASE("sum_rows and sum_cols match a double reference", "", float, double) {
    using T = TestType;
    auto& p = test_pools();
    for (auto [rows, cols] : matrices) {
        INFO(rows << " x " << cols);
        const auto in = random_vector<T>(rows * cols, 10);
        std::vector<double> row_ref(rows), col_ref(cols);
        for (std::size_t r = 0; r < rows; ++r)
            for (std::size_t c = 0; c < cols; ++c) {
                row_ref[r] += in[r * cols + c];
                col_ref[c] += in[r * cols + c];
            }

        std::vector<T> r1(rows), r2(rows), r3(rows);
        k::sum_rows(rows, cols, in.data(), r1.data(), false, p.one);
        k::sum_rows(rows, cols, in.data(), r2.data(), false, p.two);
        k::sum_rows(rows, cols, in.data(), r3.data(), false, p.three);
        // The sums accumulate in double: only the final rounding to T remains.
        CHECK(max_rel_err(r1, row_ref, 1.0) <= tolerance<T>);
        CHECK(bitwise_equal(r1, r2));
        CHECK(bitwise_equal(r1, r3));

        std::vector<T> c1(cols), c2(cols), c3(cols);
        k::sum_cols(rows, cols, in.data(), c1.data(), false, p.one);
        k::sum_cols(rows, cols, in.data(), c2.data(), false, p.two);
        k::sum_cols(rows, cols, in.data(), c3.data(), false, p.three);
        CHECK(max_rel_err(c1, col_ref, 1.0) <= tolerance<T>);
        CHECK(bitwise_equal(c1, c2));
        CHECK(bitwise_equal(c1, c3));

        // accumulate = true adds to what is there.
        std::vector<T> acc(cols, T(0.5)), acc2(cols, T(0.5));
        k::sum_cols(rows, cols, in.data(), acc.data(), true, p.one);
        k::sum_cols(rows, cols, in.data(), acc2.data(), true, p.two);
        for (double& v : col_ref) v += 0.5;
        CHECK(max_rel_err(acc, col_ref, 1.0) <= tolerance<T>);
        CHECK(bitwise_equal(acc, acc2));
        std::vector<T> racc(rows, T(-2));
        k::sum_rows(rows, cols, in.data(), racc.data(), true);
        for (double& v : row_ref) v -= 2;
        CHECK(max_rel_err(racc, row_ref, 1.0) <= tolerance<T>);
    }
}

TEST_CASE("reduce_rows folds each row with any operation") {
    auto& p = test_pools();
    for (auto [rows, cols] : matrices) {
        INFO(rows << " x " << cols);
        const auto in = random_vector<float>(rows * cols, 20);
        // Row maximum, and a count of positive entries into an integer output.
        std::vector<float> m1(rows), m2(rows);
        const auto max_op = [](float a, float x) { return std::max(a, x); };
        k::reduce_rows(rows, cols, in.data(), m1.data(), -std::numeric_limits<float>::infinity(), max_op, p.one);
        k::reduce_rows(rows, cols, in.data(), m2.data(), -std::numeric_limits<float>::infinity(), max_op, p.two);
        std::vector<int> n1(rows);
        k::reduce_rows(rows, cols, in.data(), n1.data(), 0, [](int a, float x) { return a + (x > 0); }, p.two);
        for (std::size_t r = 0; r < rows; ++r) {
            const float* row = in.data() + r * cols;
            REQUIRE(m1[r] == *std::max_element(row, row + cols));
            REQUIRE(n1[r] == std::count_if(row, row + cols, [](float x) { return x > 0; }));
        }
        CHECK(bitwise_equal(m1, m2));
        // A non-commutative fold runs in column order: Horner's rule for the digits of a row.
        std::vector<double> h(rows);
        k::reduce_rows(rows, cols, in.data(), h.data(), 0.0, [](double a, float x) { return 0.5 * a + x; }, p.three);
        for (std::size_t r = 0; r < std::min<std::size_t>(rows, 50); ++r) {
            double ref = 0;
            for (std::size_t c = 0; c < cols; ++c) ref = 0.5 * ref + in[r * cols + c];
            REQUIRE(h[r] == ref);
        }
    }
}

TEMPLATE_TEST_CASE("sum and sum_squares are accurate and independent of the thread count", "", float, double) {
    using T = TestType;
    auto& p = test_pools();
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{33}, std::size_t{1000},
                          std::size_t{100000}, std::size_t{1234567}}) {
        INFO("n = " << n);
        const auto in = random_vector<T>(n, 30, -1, 3);
        long double s_ref = 0, q_ref = 0;
        for (T x : in) s_ref += x, q_ref += static_cast<long double>(x) * x;
        const double s1 = k::sum(n, in.data(), p.one), s2 = k::sum(n, in.data(), p.two),
                     s3 = k::sum(n, in.data(), p.three), s0 = k::sum(n, in.data());
        const double q1 = k::sum_squares(n, in.data(), p.one), q2 = k::sum_squares(n, in.data(), p.two),
                     q3 = k::sum_squares(n, in.data(), p.three);
        static_assert(std::is_same_v<decltype(k::sum(n, in.data())), double>);
        CHECK(std::abs(s1 - static_cast<double>(s_ref)) <= 1e-13 * std::max(1.0, std::abs(double(s_ref))) * 10);
        CHECK(std::abs(q1 - static_cast<double>(q_ref)) <= 1e-13 * std::max(1.0, double(q_ref)));
        CHECK(std::memcmp(&s1, &s2, sizeof s1) == 0);
        CHECK(std::memcmp(&s1, &s3, sizeof s1) == 0);
        CHECK(std::memcmp(&s1, &s0, sizeof s1) == 0);
        CHECK(std::memcmp(&q1, &q2, sizeof q1) == 0);
        CHECK(std::memcmp(&q1, &q3, sizeof q1) == 0);
    }
    // Cancellation: many small terms after a huge one are not lost in float.
    std::vector<float> v(100001, 1.0f);
    v[0] = 1e8f;
    CHECK(k::sum(v.size(), v.data()) == 1e8 + 100000);
}

TEST_CASE("exp_float is accurate to about 1 ulp and handles the edges") {
    using ctdl::math::exp_float;
    // Sampled over the whole range of normal results.
    const ctdl::random_stream rs{ctdl::seed{1}, 99};
    const std::size_t n = 200000;
    std::vector<float> x(n), y(n);
    for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<float>(-87.3 + (88.3 + 87.3) * rs.uniform<double>(i));
    x[0] = 0.0f, x[1] = -1e-30f, x[2] = 1e-30f;
    double worst = 0;
    float (*volatile scalar)(float) = exp_float;  // an out-of-line call, never vectorized
    k::map(n, y.data(), [](float v) { return exp_float(v); }, x.data());
    for (std::size_t i = 0; i < n; ++i) {
        const double ref = std::exp(static_cast<double>(x[i]));
        const double ulp = std::nextafter(static_cast<float>(ref), HUGE_VALF) - static_cast<float>(ref);
        worst = std::max(worst, std::abs(y[i] - ref) / ulp);
        const float s = scalar(x[i]);
        REQUIRE(std::memcmp(&s, &y[i], sizeof s) == 0);  // vector loop and scalar code agree bitwise
    }
    CHECK(worst <= 1.5);
    CHECK(exp_float(0.0f) == 1.0f);
    CHECK(exp_float(-HUGE_VALF) == 0.0f);
    CHECK(exp_float(-100.0f) == 0.0f);
    CHECK(exp_float(HUGE_VALF) == HUGE_VALF);
    CHECK(exp_float(100.0f) == HUGE_VALF);
    CHECK(std::isnan(exp_float(std::numeric_limits<float>::quiet_NaN())));
}

// ---------------------------------------------------------------- pass counts

TEST_CASE("each kernel call records exactly one pass of its kind") {
    const std::size_t rows = 300, cols = 200;  // above the serial threshold
    std::vector<float> a(rows * cols, 1.0f), b(rows * cols), r(rows), c(cols);
    ctdl::thread_pool pool(2);
    ctdl::count_passes counting;
    k::map(pool, a.size(), b.data(), [](float x) { return 2 * x; }, a.data());
    k::map(a.size(), b.data(), [](float x, float y) { return x + y; }, a.data(), b.data());
    k::map_inplace(pool, a.size(), b.data(), [](float x) { return -x; });
    k::map_inplace(3, b.data(), [](float x) { return -x; });
    CHECK(counting.counts()[ctdl::pass::map] == 4);
    k::sum_rows(rows, cols, a.data(), r.data(), false, pool);
    k::sum_cols(rows, cols, a.data(), c.data(), true, pool);
    k::reduce_rows(rows, cols, a.data(), r.data(), 0.0f, [](float s, float x) { return s + x; }, pool);
    (void)k::sum(a.size(), a.data(), pool);
    (void)k::sum_squares(a.size(), a.data());
    CHECK(counting.counts()[ctdl::pass::reduce] == 5);
    CHECK(counting.counts().total() == 9);
    CHECK(c[0] == 300.0f);
    CHECK(r[0] == 200.0f);
}
