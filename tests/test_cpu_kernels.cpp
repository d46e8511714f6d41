#include <catch2/catch.hpp>
#include <ctdl/core/random.hpp>
#include <ctdl/exec/cpu/elementwise.hpp>
#include <ctdl/exec/cpu/normalize.hpp>
#include <ctdl/exec/cpu/reduce.hpp>
#include <ctdl/exec/cpu/softmax.hpp>
#include <ctdl/exec/pass_count.hpp>
#include <ctdl/exec/row_math.hpp>
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
// [rows, cols]; the last ones are above the serial threshold, so two threads really split them.
constexpr std::pair<std::size_t, std::size_t> matrices[] = {{1, 1},   {3, 5},     {64, 10},   {1, 1000},
                                                            {257, 129}, {1000, 100}, {5, 20000}, {40000, 3}};

template <class T>
std::vector<T> random_vector(std::size_t n, std::uint64_t stream, double lo = -1, double hi = 1) {
    const ctdl::random_stream rs{ctdl::seed{2718}, stream};
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<T>(lo + (hi - lo) * rs.uniform<double>(i));
    return v;
}

template <class T>
bool bitwise_equal(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// Relative error of a against a double reference, scaled by the reference's magnitude.
template <class T>
double max_rel_err(const std::vector<T>& a, const std::vector<double>& ref, double floor = 1.0) {
    double e = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
        e = std::max(e, std::abs(static_cast<double>(a[i]) - ref[i]) / std::max(floor, std::abs(ref[i])));
    return e;
}

template <class T>
constexpr double tolerance = std::is_same_v<T, float> ? 2e-6 : 1e-13;

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

// ---------------------------------------------------------------- softmax

namespace {
std::vector<double> softmax_ref(std::size_t rows, std::size_t cols, const std::vector<double>& x, bool log) {
    std::vector<double> y(x.size());
    for (std::size_t r = 0; r < rows; ++r) {
        const double* xr = x.data() + r * cols;
        const double m = *std::max_element(xr, xr + cols);
        double s = 0;
        for (std::size_t c = 0; c < cols; ++c) s += std::exp(xr[c] - m);
        for (std::size_t c = 0; c < cols; ++c)
            y[r * cols + c] = log ? xr[c] - m - std::log(s) : std::exp(xr[c] - m) / s;
    }
    return y;
}
template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
    return {v.begin(), v.end()};
}
}  // namespace

TEMPLATE_TEST_CASE("softmax_rows and log_softmax_rows match a double reference", "", float, double) {
    using T = TestType;
    auto& p = test_pools();
    for (auto [rows, cols] : matrices) {
        INFO(rows << " x " << cols);
        const auto x = random_vector<T>(rows * cols, 40, -8, 8);
        const auto ref = softmax_ref(rows, cols, to_double(x), false);
        const auto lref = softmax_ref(rows, cols, to_double(x), true);

        std::vector<T> y1(x.size()), y2(x.size()), y3(x.size()), l1(x.size()), l2(x.size());
        k::softmax_rows(rows, cols, x.data(), y1.data(), p.one);
        k::softmax_rows(rows, cols, x.data(), y2.data(), p.two);
        k::softmax_rows(rows, cols, x.data(), y3.data(), p.three);
        CHECK(max_rel_err(y1, ref, 0.0) <= 4 * tolerance<T>);
        CHECK(bitwise_equal(y1, y2));
        CHECK(bitwise_equal(y1, y3));
        for (std::size_t r = 0; r < rows; ++r) {
            double s = 0;
            for (std::size_t c = 0; c < cols; ++c) s += y1[r * cols + c];
            REQUIRE(std::abs(s - 1) <= 4 * tolerance<T> * std::sqrt(double(cols)) + 1e-15);
        }

        k::log_softmax_rows(rows, cols, x.data(), l1.data(), p.one);
        k::log_softmax_rows(rows, cols, x.data(), l2.data(), p.two);
        CHECK(max_rel_err(l1, lref, 1.0) <= 8 * tolerance<T>);
        CHECK(bitwise_equal(l1, l2));

        // In place gives the same as out of place.
        auto z = x;
        k::softmax_rows(rows, cols, z.data(), z.data(), p.two);
        CHECK(bitwise_equal(z, y1));
        z = x;
        k::log_softmax_rows(rows, cols, z.data(), z.data());
        CHECK(bitwise_equal(z, l1));
    }
}

TEMPLATE_TEST_CASE("softmax stays finite for huge logits", "", float, double) {
    using T = TestType;
    const std::size_t rows = 4, cols = 6;
    const std::vector<T> x = {T(1e4),  T(-1e4), T(0),    T(1e4 - 1), T(-1e4), T(1e4),   // two maxima, one close
                              T(-1e4), T(-1e4), T(-1e4), T(-1e4),    T(-1e4), T(-1e4),  // all equal and very negative
                              T(1e4),  T(1e4),  T(1e4),  T(1e4),     T(1e4),  T(1e4),   // all equal and very positive
                              T(-1e4), T(0),    T(1e4),  T(-5e3),    T(5e3),  T(-1e4)};
    std::vector<T> y(x.size()), l(x.size());
    k::softmax_rows(rows, cols, x.data(), y.data());
    k::log_softmax_rows(rows, cols, x.data(), l.data());
    for (std::size_t i = 0; i < x.size(); ++i) {
        REQUIRE(std::isfinite(y[i]));
        REQUIRE(std::isfinite(l[i]));
    }
    const auto ref = softmax_ref(rows, cols, to_double(x), false);
    const auto lref = softmax_ref(rows, cols, to_double(x), true);
    CHECK(max_rel_err(y, ref, 1e-30) <= 4 * tolerance<T>);
    CHECK(max_rel_err(l, lref, 1.0) <= 8 * tolerance<T>);
    CHECK(y[0] == Approx(1 / (2 + std::exp(-1.0))));
    CHECK(y[6] == Approx(1.0 / 6));
    CHECK(y[12] == Approx(1.0 / 6));
    CHECK(y[20] == T(1));
    CHECK(l[1] == Approx(-2e4 - std::log(2 + std::exp(-1.0))));
}

TEST_CASE("exp_float is accurate to about 1 ulp and handles the edges") {
    using ctdl::cpu_kernels::detail::exp_float;
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

TEST_CASE("softmax gives exact zeros for -inf logits (masking)") {
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<float> x = {1.0f, -inf, 2.0f, -inf, -inf, 0.5f, -inf, -inf};
    std::vector<float> y(x.size());
    k::softmax_rows(2, 4, x.data(), y.data());
    CHECK(y[1] == 0.0f);
    CHECK(y[3] == 0.0f);
    CHECK(y[4] == 0.0f);
    CHECK(y[5] == 1.0f);
    CHECK(y[0] + y[2] == Approx(1.0f));
}

namespace {
// L(x) = Σ w ⊙ f(x) for f = softmax or log_softmax, in double.
double weighted(std::size_t rows, std::size_t cols, const std::vector<double>& x, const std::vector<double>& w,
                bool log) {
    std::vector<double> y(x.size());
    if (log)
        k::log_softmax_rows(rows, cols, x.data(), y.data());
    else
        k::softmax_rows(rows, cols, x.data(), y.data());
    double l = 0;
    for (std::size_t i = 0; i < x.size(); ++i) l += w[i] * y[i];
    return l;
}
}  // namespace

TEST_CASE("softmax backward matches central finite differences in double") {
    for (auto [rows, cols] : {std::pair<std::size_t, std::size_t>{1, 1}, {3, 5}, {4, 33}, {2, 129}}) {
        for (bool log : {false, true}) {
            INFO(rows << " x " << cols << (log ? " log_softmax" : " softmax"));
            auto x = random_vector<double>(rows * cols, 50, -3, 3);
            const auto w = random_vector<double>(rows * cols, 51);
            std::vector<double> y(x.size()), dx(x.size());
            if (log) {
                k::log_softmax_rows(rows, cols, x.data(), y.data());
                k::log_softmax_rows_backward(rows, cols, y.data(), w.data(), dx.data());
            } else {
                k::softmax_rows(rows, cols, x.data(), y.data());
                k::softmax_rows_backward(rows, cols, y.data(), w.data(), dx.data());
            }
            const double h = 1e-5;
            for (std::size_t i = 0; i < x.size(); ++i) {
                const double x0 = x[i];
                x[i] = x0 + h;
                const double lp = weighted(rows, cols, x, w, log);
                x[i] = x0 - h;
                const double lm = weighted(rows, cols, x, w, log);
                x[i] = x0;
                REQUIRE(dx[i] == Approx((lp - lm) / (2 * h)).margin(1e-8));
            }
        }
    }
}

TEMPLATE_TEST_CASE("softmax backward is bitwise independent of the thread count and works in place", "", float,
                   double) {
    using T = TestType;
    auto& p = test_pools();
    for (auto [rows, cols] : matrices) {
        INFO(rows << " x " << cols);
        std::vector<T> y(rows * cols);
        const auto x = random_vector<T>(rows * cols, 60, -4, 4);
        const auto dy = random_vector<T>(rows * cols, 61);
        k::softmax_rows(rows, cols, x.data(), y.data());
        std::vector<T> d1(y.size()), d2(y.size()), d3 = dy;
        k::softmax_rows_backward(rows, cols, y.data(), dy.data(), d1.data(), p.one);
        k::softmax_rows_backward(rows, cols, y.data(), dy.data(), d2.data(), p.two);
        k::softmax_rows_backward(rows, cols, y.data(), d3.data(), d3.data(), p.three);  // dx == dy
        CHECK(bitwise_equal(d1, d2));
        CHECK(bitwise_equal(d1, d3));
        // Reference: dx = y (dy − Σ dy y).
        std::vector<double> ref(y.size());
        for (std::size_t r = 0; r < rows; ++r) {
            double dot = 0;
            for (std::size_t c = 0; c < cols; ++c) dot += double(dy[r * cols + c]) * y[r * cols + c];
            for (std::size_t c = 0; c < cols; ++c)
                ref[r * cols + c] = double(y[r * cols + c]) * (double(dy[r * cols + c]) - dot);
        }
        CHECK(max_rel_err(d1, ref, 1e-3) <= 8 * tolerance<T>);
        // The gradient of a softmax sums to zero along each row.
        for (std::size_t r = 0; r < std::min<std::size_t>(rows, 100); ++r) {
            double s = 0, a = 0;
            for (std::size_t c = 0; c < cols; ++c) s += d1[r * cols + c], a += std::abs(double(d1[r * cols + c]));
            REQUIRE(std::abs(s) <= 1e-5 * std::max(a, 1e-30) + 1e-30);
        }
        std::vector<T> l(y.size()), g1(y.size()), g2(y.size());
        k::log_softmax_rows(rows, cols, x.data(), l.data());
        k::log_softmax_rows_backward(rows, cols, l.data(), dy.data(), g1.data(), p.one);
        k::log_softmax_rows_backward(rows, cols, l.data(), dy.data(), g2.data(), p.two);
        CHECK(bitwise_equal(g1, g2));
    }
}

// ---------------------------------------------------------------- layer norm

TEMPLATE_TEST_CASE("layer norm matches row_math and is bitwise independent of the thread count", "", float,
                   double) {
    using T = TestType;
    // [rows, cols]: tails of the 16 lanes, several 128-column tiles of dw, and sizes above the
    // serial thresholds, so two threads really split rows and columns.
    constexpr std::pair<std::size_t, std::size_t> shapes[] = {{1, 1}, {3, 5}, {7, 17}, {64, 128}, {300, 130},
                                                              {1024, 128}, {40, 300}, {2000, 33}};
    const T eps = T(1e-5);
    for (const auto& shape : shapes) {
        const std::size_t rows = shape.first, cols = shape.second;  // plain names: the lambdas below capture them
        INFO(rows << " x " << cols);
        const auto x = random_vector<T>(rows * cols, 70, -3, 5);
        const auto w = random_vector<T>(cols, 71, 0.5, 1.5);
        const auto b = random_vector<T>(cols, 72);
        const auto dy = random_vector<T>(rows * cols, 73);
        // The device's per-row math as the reference (same formulas, sums in column order).
        std::vector<T> y_ref(x.size()), mean_ref(rows), rstd_ref(rows), dx_ref(x.size()), dw_ref(cols), db_ref(cols);
        for (std::size_t r = 0; r < rows; ++r) {
            ctdl::row_math::layer_norm_forward(cols, x.data() + r * cols, w.data(), b.data(), y_ref.data() + r * cols,
                                               &mean_ref[r], &rstd_ref[r], eps);
            ctdl::row_math::layer_norm_dx(cols, x.data() + r * cols, w.data(), mean_ref[r], rstd_ref[r],
                                          dy.data() + r * cols, dx_ref.data() + r * cols);
        }
        for (std::size_t c = 0; c < cols; ++c)
            ctdl::row_math::layer_norm_dw_column(rows, cols, c, x.data(), mean_ref.data(), rstd_ref.data(), dy.data(),
                                                 dw_ref.data(), db_ref.data(), false);
        const auto to_double = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };

        struct out {
            std::vector<T> y, mean, rstd, dx, dw, db;
        };
        const auto run = [&](std::size_t threads) {
            ctdl::cpu_pool().resize(threads);
            out o{std::vector<T>(x.size()), std::vector<T>(rows), std::vector<T>(rows), std::vector<T>(x.size()),
                  std::vector<T>(cols, T(1)), std::vector<T>(cols, T(2))};
            k::layer_norm_forward(rows, cols, x.data(), w.data(), b.data(), o.y.data(), o.mean.data(), o.rstd.data(),
                                  eps);
            k::layer_norm_backward(rows, cols, x.data(), w.data(), o.mean.data(), o.rstd.data(), dy.data(), o.dx.data(),
                                   o.dw.data(), o.db.data(), true, [](auto...) {});
            return o;
        };
        const std::size_t threads_before = ctdl::cpu_pool().size();
        const out one = run(1), two = run(2);
        ctdl::cpu_pool().resize(threads_before);
        CHECK(bitwise_equal(one.y, two.y));
        CHECK(bitwise_equal(one.dx, two.dx));
        CHECK(bitwise_equal(one.dw, two.dw));
        CHECK(bitwise_equal(one.db, two.db));
        const double tol = 64 * tolerance<T>;
        CHECK(max_rel_err(one.y, to_double(y_ref)) <= tol);
        CHECK(max_rel_err(one.mean, to_double(mean_ref)) <= tol);
        CHECK(max_rel_err(one.rstd, to_double(rstd_ref)) <= tol);
        CHECK(max_rel_err(one.dx, to_double(dx_ref)) <= tol);
        // dw, db accumulate onto 1 and 2, in the same row order as row_math.
        std::vector<double> dw_acc(cols), db_acc(cols);
        for (std::size_t c = 0; c < cols; ++c) dw_acc[c] = double(dw_ref[c]) + 1, db_acc[c] = double(db_ref[c]) + 2;
        CHECK(max_rel_err(one.dw, dw_acc) <= std::sqrt(double(rows)) * tol);
        CHECK(max_rel_err(one.db, db_acc) <= std::sqrt(double(rows)) * tol);
    }
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
    k::softmax_rows(rows, cols, a.data(), b.data(), pool);
    k::log_softmax_rows(rows, cols, a.data(), b.data(), pool);
    k::softmax_rows_backward(rows, cols, a.data(), a.data(), b.data(), pool);
    k::log_softmax_rows_backward(rows, cols, a.data(), a.data(), b.data());
    CHECK(counting.counts()[ctdl::pass::softmax] == 4);
    CHECK(counting.counts().total() == 13);
    CHECK(c[0] == 300.0f);
    CHECK(r[0] == 200.0f);
}
