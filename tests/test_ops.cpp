// The ops of include/ctdl/ops/ run through ctdl::launch on the cpu policy: each against an
// independent reference in double, bitwise the same for any thread count, in place where
// the op allows it, and its backward against central finite differences in double. (The
// device policy runs the same ops in test_device.cpp.)
#include <catch2/catch.hpp>
#include "kernel_checks.hpp"
#include <ctdl/core/random.hpp>
#include <ctdl/exec/cpu.hpp>
#include <ctdl/exec/kernel.hpp>
#include <ctdl/ops/layer_norm/kernels.hpp>
#include <ctdl/ops/softmax/kernels.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>
#include <vector>

namespace {

using ctdl::cpu;
using ctdl::launch;
namespace ops = ctdl::ops;

using ctdl_test::bitwise_equal;
using ctdl_test::matrices;
using ctdl_test::max_rel_err;
using ctdl_test::random_vector;
using ctdl_test::tolerance;

template <class T>
std::vector<double> to_double(const std::vector<T>& v) {
    return {v.begin(), v.end()};
}

// Runs f with the cpu pool at `threads` threads, then restores it.
template <class F>
void with_threads(std::size_t threads, F&& f) {
    const std::size_t before = cpu::threads();
    cpu::set_threads(threads);
    f();
    cpu::set_threads(before);
}

std::vector<double> softmax_ref(std::size_t rows, std::size_t cols, const std::vector<double>& x) {
    std::vector<double> y(x.size());
    for (std::size_t r = 0; r < rows; ++r) {
        const double* xr = x.data() + r * cols;
        const double m = *std::max_element(xr, xr + cols);
        double s = 0;
        for (std::size_t c = 0; c < cols; ++c) s += std::exp(xr[c] - m);
        for (std::size_t c = 0; c < cols; ++c) y[r * cols + c] = std::exp(xr[c] - m) / s;
    }
    return y;
}

// Σ w ⊙ f(x) in double, f an op's forward: the loss its finite differences are taken of.
double weighted(const std::vector<double>& w, const std::vector<double>& y) {
    double l = 0;
    for (std::size_t i = 0; i < y.size(); ++i) l += w[i] * y[i];
    return l;
}

// Central finite differences of L(x) = weighted(w, forward(x)) against dx, every element.
void check_finite_differences(std::vector<double> x, const std::vector<double>& w, const std::vector<double>& dx,
                              const std::function<std::vector<double>(const std::vector<double>&)>& forward) {
    const double h = 1e-5;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double lp = weighted(w, forward(x));
        x[i] = x0 - h;
        const double lm = weighted(w, forward(x));
        x[i] = x0;
        INFO("element " << i);
        REQUIRE(dx[i] == Approx((lp - lm) / (2 * h)).margin(1e-8));
    }
}

}  // namespace

// ---------------------------------------------------------------- softmax

TEMPLATE_TEST_CASE("softmax_forward matches a double reference, for any thread count and in place", "", float,
                   double) {
    using T = TestType;
    for (const auto& m : matrices) {
        const std::size_t rows = m.first, cols = m.second;
        INFO(rows << " x " << cols);
        const auto x = random_vector<T>(rows * cols, 40, -8, 8);
        const auto ref = softmax_ref(rows, cols, to_double(x));
        std::vector<T> y1(x.size()), y2(x.size()), y3(x.size());
        with_threads(1, [&] { launch<ops::softmax_forward, cpu>(rows, cols, x.data(), y1.data()); });
        with_threads(2, [&] { launch<ops::softmax_forward, cpu>(rows, cols, x.data(), y2.data()); });
        with_threads(3, [&] { launch<ops::softmax_forward, cpu>(rows, cols, x.data(), y3.data()); });
        CHECK(max_rel_err(y1, ref, 0.0) <= 4 * tolerance<T>);
        CHECK(bitwise_equal(y1, y2));
        CHECK(bitwise_equal(y1, y3));
        for (std::size_t r = 0; r < rows; ++r) {
            double s = 0;
            for (std::size_t c = 0; c < cols; ++c) s += y1[r * cols + c];
            REQUIRE(std::abs(s - 1) <= 4 * tolerance<T> * std::sqrt(double(cols)) + 1e-15);
        }
        auto z = x;  // in place gives the same as out of place
        launch<ops::softmax_forward, cpu>(rows, cols, z.data(), z.data());
        CHECK(bitwise_equal(z, y1));
    }
}

TEMPLATE_TEST_CASE("softmax_forward stays finite for huge logits and gives exact zeros for -inf", "", float, double) {
    using T = TestType;
    const std::size_t rows = 4, cols = 6;
    const std::vector<T> x = {T(1e4),  T(-1e4), T(0),    T(1e4 - 1), T(-1e4), T(1e4),   // two maxima, one close
                              T(-1e4), T(-1e4), T(-1e4), T(-1e4),    T(-1e4), T(-1e4),  // all equal and very negative
                              T(1e4),  T(1e4),  T(1e4),  T(1e4),     T(1e4),  T(1e4),   // all equal and very positive
                              T(-1e4), T(0),    T(1e4),  T(-5e3),    T(5e3),  T(-1e4)};
    std::vector<T> y(x.size());
    launch<ops::softmax_forward, cpu>(rows, cols, x.data(), y.data());
    for (T v : y) REQUIRE(std::isfinite(v));
    CHECK(max_rel_err(y, softmax_ref(rows, cols, to_double(x)), 1e-30) <= 4 * tolerance<T>);
    CHECK(y[0] == Approx(1 / (2 + std::exp(-1.0))));
    CHECK(y[6] == Approx(1.0 / 6));
    CHECK(y[20] == T(1));

    const T inf = std::numeric_limits<T>::infinity();
    const std::vector<T> masked = {1, -inf, 2, -inf, -inf, T(0.5), -inf, -inf};
    std::vector<T> p(masked.size());
    launch<ops::softmax_forward, cpu>(2, 4, masked.data(), p.data());
    CHECK(p[1] == 0);
    CHECK(p[3] == 0);
    CHECK(p[4] == 0);
    CHECK(p[5] == 1);
    CHECK(p[0] + p[2] == Approx(1));
}

TEST_CASE("softmax_backward matches central finite differences in double") {
    for (const auto& m : {std::pair<std::size_t, std::size_t>{1, 1}, {3, 5}, {4, 33}, {2, 129}}) {
        const std::size_t rows = m.first, cols = m.second;
        INFO(rows << " x " << cols);
        const auto x = random_vector<double>(rows * cols, 50, -3, 3);
        const auto w = random_vector<double>(rows * cols, 51);
        const auto forward = [&](const std::vector<double>& in) {
            std::vector<double> y(in.size());
            launch<ops::softmax_forward, cpu>(rows, cols, in.data(), y.data());
            return y;
        };
        const auto y = forward(x);
        std::vector<double> dx(x.size());
        launch<ops::softmax_backward, cpu>(rows, cols, y.data(), w.data(), dx.data());
        check_finite_differences(x, w, dx, forward);
    }
}

TEMPLATE_TEST_CASE("softmax_backward is bitwise independent of the thread count and works in place", "", float,
                   double) {
    using T = TestType;
    for (const auto& m : matrices) {
        const std::size_t rows = m.first, cols = m.second;
        INFO(rows << " x " << cols);
        std::vector<T> y(rows * cols);
        const auto x = random_vector<T>(rows * cols, 60, -4, 4);
        const auto dy = random_vector<T>(rows * cols, 61);
        launch<ops::softmax_forward, cpu>(rows, cols, x.data(), y.data());
        std::vector<T> d1(y.size()), d2(y.size()), d3 = dy;
        with_threads(1, [&] { launch<ops::softmax_backward, cpu>(rows, cols, y.data(), dy.data(), d1.data()); });
        with_threads(2, [&] { launch<ops::softmax_backward, cpu>(rows, cols, y.data(), dy.data(), d2.data()); });
        with_threads(3, [&] { launch<ops::softmax_backward, cpu>(rows, cols, y.data(), d3.data(), d3.data()); });
        CHECK(bitwise_equal(d1, d2));
        CHECK(bitwise_equal(d1, d3));
        std::vector<double> ref(y.size());  // dx = y (dy − Σ dy y)
        for (std::size_t r = 0; r < rows; ++r) {
            double dot = 0;
            for (std::size_t c = 0; c < cols; ++c) dot += double(dy[r * cols + c]) * y[r * cols + c];
            for (std::size_t c = 0; c < cols; ++c)
                ref[r * cols + c] = double(y[r * cols + c]) * (double(dy[r * cols + c]) - dot);
        }
        CHECK(max_rel_err(d1, ref, 1e-3) <= 8 * tolerance<T>);
    }
}

// ---------------------------------------------------------------- layer norm

namespace {
struct layer_norm_ref {
    std::vector<double> y, mean, rstd, dx, dw, db;
};
// Layer norm in double, straight from its formulas.
layer_norm_ref layer_norm_in_double(std::size_t rows, std::size_t cols, const std::vector<double>& x,
                                    const std::vector<double>& w, const std::vector<double>& b,
                                    const std::vector<double>& dy, double eps) {
    layer_norm_ref o{std::vector<double>(x.size()), std::vector<double>(rows), std::vector<double>(rows),
                     std::vector<double>(x.size()), std::vector<double>(cols), std::vector<double>(cols)};
    for (std::size_t r = 0; r < rows; ++r) {
        const double* xr = x.data() + r * cols;
        double mu = 0, var = 0;
        for (std::size_t c = 0; c < cols; ++c) mu += xr[c];
        mu /= double(cols);
        for (std::size_t c = 0; c < cols; ++c) var += (xr[c] - mu) * (xr[c] - mu);
        const double rho = 1 / std::sqrt(var / double(cols) + eps);
        o.mean[r] = mu, o.rstd[r] = rho;
        double sg = 0, sgx = 0;
        for (std::size_t c = 0; c < cols; ++c) {
            const double xh = (xr[c] - mu) * rho, g = dy[r * cols + c] * w[c];
            o.y[r * cols + c] = xh * w[c] + b[c];
            sg += g, sgx += g * xh;
            o.dw[c] += dy[r * cols + c] * xh;
            o.db[c] += dy[r * cols + c];
        }
        for (std::size_t c = 0; c < cols; ++c) {
            const double xh = (xr[c] - mu) * rho;
            o.dx[r * cols + c] = rho * (dy[r * cols + c] * w[c] - sg / double(cols) - xh * sgx / double(cols));
        }
    }
    return o;
}
}  // namespace

TEMPLATE_TEST_CASE("layer_norm ops match the formulas in double and are bitwise independent of the thread count",
                   "", float, double) {
    using T = TestType;
    // Tails of the 16 lanes, several column tiles of dw, and sizes above the serial
    // thresholds, so two threads really split rows and columns.
    constexpr std::pair<std::size_t, std::size_t> shapes[] = {{1, 1}, {3, 5}, {7, 17}, {64, 128}, {300, 130},
                                                              {1024, 128}, {40, 300}, {2000, 33}};
    const T eps = T(1e-5);
    for (const auto& shape : shapes) {
        const std::size_t rows = shape.first, cols = shape.second;
        INFO(rows << " x " << cols);
        const auto x = random_vector<T>(rows * cols, 70, -3, 5);
        const auto w = random_vector<T>(cols, 71, 0.5, 1.5);
        const auto b = random_vector<T>(cols, 72);
        const auto dy = random_vector<T>(rows * cols, 73);
        const auto ref = layer_norm_in_double(rows, cols, to_double(x), to_double(w), to_double(b), to_double(dy), 1e-5);

        struct out {
            std::vector<T> y, mean, rstd, dx, dw, db;
        };
        const auto run = [&](std::size_t threads) {
            out o{std::vector<T>(x.size()), std::vector<T>(rows), std::vector<T>(rows), std::vector<T>(x.size()),
                  std::vector<T>(cols, T(1)), std::vector<T>(cols, T(2))};
            with_threads(threads, [&] {
                launch<ops::layer_norm_forward, cpu>(rows, cols, x.data(), w.data(), b.data(), o.y.data(),
                                                     o.mean.data(), o.rstd.data(), eps);
                launch<ops::layer_norm_backward, cpu>(rows, cols, x.data(), w.data(),
                                                      static_cast<const T*>(o.mean.data()),
                                                      static_cast<const T*>(o.rstd.data()), dy.data(), o.dx.data(),
                                                      o.dw.data(), o.db.data(), true, ctdl::epilogue::none{});
            });
            return o;
        };
        const out one = run(1), two = run(2);
        CHECK(bitwise_equal(one.y, two.y));
        CHECK(bitwise_equal(one.dx, two.dx));
        CHECK(bitwise_equal(one.dw, two.dw));
        CHECK(bitwise_equal(one.db, two.db));
        const double tol = 64 * tolerance<T>;
        CHECK(max_rel_err(one.y, ref.y) <= tol);
        CHECK(max_rel_err(one.mean, ref.mean) <= tol);
        CHECK(max_rel_err(one.rstd, ref.rstd) <= tol);
        CHECK(max_rel_err(one.dx, ref.dx) <= tol);
        // dw, db accumulate onto 1 and 2.
        std::vector<double> dw_acc(cols), db_acc(cols);
        for (std::size_t c = 0; c < cols; ++c) dw_acc[c] = ref.dw[c] + 1, db_acc[c] = ref.db[c] + 2;
        CHECK(max_rel_err(one.dw, dw_acc) <= std::sqrt(double(rows)) * tol);
        CHECK(max_rel_err(one.db, db_acc) <= std::sqrt(double(rows)) * tol);
    }
}

TEST_CASE("each op launch records its passes") {
    const std::size_t rows = 300, cols = 200;
    std::vector<float> a(rows * cols, 1.0f), b(rows * cols), w(cols, 1.0f), m(rows), r(rows), dw(cols), db(cols);
    ctdl::count_passes counting;
    launch<ops::softmax_forward, cpu>(rows, cols, a.data(), b.data());
    launch<ops::softmax_backward, cpu>(rows, cols, static_cast<const float*>(a.data()), static_cast<const float*>(a.data()),
                                       b.data());
    CHECK(counting.counts()[ctdl::pass::softmax] == 2);
    launch<ops::layer_norm_forward, cpu>(rows, cols, a.data(), w.data(), w.data(), b.data(), m.data(), r.data(), 1e-5f);
    CHECK(counting.counts()[ctdl::pass::map] == 1);
    launch<ops::layer_norm_backward, cpu>(rows, cols, static_cast<const float*>(a.data()),
                                          static_cast<const float*>(w.data()), static_cast<const float*>(m.data()),
                                          static_cast<const float*>(r.data()), static_cast<const float*>(a.data()),
                                          b.data(), dw.data(), db.data(), false, ctdl::epilogue::none{});
    CHECK(counting.counts()[ctdl::pass::map] == 2);
    CHECK(counting.counts()[ctdl::pass::reduce] == 1);
    CHECK(counting.counts().total() == 5);
    CHECK(db[0] == 300.0f);
}
