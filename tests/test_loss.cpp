// Losses: PyTorch parity (tests/golden/loss_*.txt), finite differences in double, pass
// counts, bad targets, ignore_index and masks, determinism across thread counts.
#include <catch2/catch.hpp>
#include <ctdl/core/tensor.hpp>
#include <ctdl/exec/cpu.hpp>
#include <ctdl/loss/loss.hpp>

#include <bit>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "golden_files.hpp"

namespace loss = ctdl::loss;
using ctdl::shape;
using ctdl::tensor;

namespace {

using ctdl_test::read_golden;
using ctdl_test::section;

template <class X>
void load(X& x, const std::vector<double>& v) {
    using T = typename X::value_type;
    REQUIRE(v.size() == X::size);
    for (std::size_t i = 0; i < X::size; ++i) {
        if constexpr (std::floating_point<T>)
            x.data()[i] = static_cast<T>(static_cast<float>(v[i]));
        else
            x.data()[i] = static_cast<T>(v[i]);
    }
}

template <class T>
bool close(double got, double want) {
    constexpr double rel = std::same_as<T, float> ? 1e-5 : 1e-12;
    constexpr double abs = std::same_as<T, float> ? 1e-7 : 1e-15;
    return std::abs(got - want) <= abs + rel * std::abs(want);
}

template <class T>
std::string label() {
    return std::same_as<T, float> ? "float" : "double";
}

// Checks loss and gradient against the golden file; f(dx) runs forward_backward, g() the
// loss alone.
template <class T, class D, class FB, class L>
void check_against(const std::map<std::string, std::vector<double>>& g, D& dx, FB forward_backward, L loss_only) {
    const double want = section(g, label<T>() + " loss")[0];
    const auto& want_grad = section(g, label<T>() + " grad");
    for (auto& v : dx) v = T(12345);  // every element must be written
    const T l = forward_backward();
    CHECK(close<T>(l, want));
    CHECK(loss_only() == l);  // the same sum in the same order
    REQUIRE(want_grad.size() == D::size);
    for (std::size_t i = 0; i < D::size; ++i) {
        INFO(label<T>() << " gradient element " << i << ": " << dx.data()[i] << " vs " << want_grad[i]);
        CHECK(close<T>(dx.data()[i], want_grad[i]));
    }
}

// Central differences of f at x, against the analytic gradient.
template <class X, class F>
void check_finite_differences(X& x, const X& analytic, F f) {
    const double h = 1e-6;
    for (std::size_t i = 0; i < X::size; ++i) {
        const double keep = x.data()[i];
        x.data()[i] = keep + h;
        const double up = f();
        x.data()[i] = keep - h;
        const double down = f();
        x.data()[i] = keep;
        const double numeric = (up - down) / (2 * h);
        INFO("element " << i << ": numeric " << numeric << ", analytic " << analytic.data()[i]);
        CHECK(std::abs(numeric - analytic.data()[i]) <= 1e-8 + 1e-6 * std::abs(numeric));
    }
}

template <class X>
void fill_pseudo_random(X& x, unsigned seed, double scale = 1) {
    unsigned s = seed;
    for (auto& v : x) {
        s = s * 1664525u + 1013904223u;
        v = static_cast<typename X::value_type>(scale * (static_cast<double>(s >> 8) / 16777216.0 - 0.5));
    }
}

// A function that takes any loss as an argument, as a training loop does.
template <class Loss, class P, class Y>
auto evaluate(const Loss& l, const P& p, const Y& y) {
    return l(p, y);
}

}  // namespace

// ---------------------------------------------------------------- PyTorch parity

TEMPLATE_TEST_CASE("cross_entropy matches PyTorch on rank-3 logits", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_ce_rank3.txt");
    tensor<T, shape<2, 3, 5>> x, dx;
    tensor<std::int64_t, shape<2, 3>> y;
    load(x, section(g, "logits"));
    load(y, section(g, "targets"));
    check_against<T>(g, dx, [&] { return loss::cross_entropy.forward_backward(x, y, dx); },
                     [&] { return loss::cross_entropy(x, y); });
}

TEMPLATE_TEST_CASE("cross_entropy with ignore_index matches PyTorch", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_ce_ignore.txt");
    tensor<T, shape<6, 4>> x, dx;
    tensor<int, shape<6>> y;
    load(x, section(g, "logits"));
    load(y, section(g, "targets"));
    const loss::cross_entropy_t ce{.ignore_index = -100};
    check_against<T>(g, dx, [&] { return ce.forward_backward(x, y, dx); }, [&] { return ce(x, y); });
}

TEMPLATE_TEST_CASE("cross_entropy with a row mask matches PyTorch", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_ce_mask.txt");
    tensor<T, shape<5, 7>> x, dx;
    tensor<int, shape<5>> y;
    tensor<float, shape<5>> m;
    load(x, section(g, "logits"));
    load(y, section(g, "targets"));
    load(m, section(g, "mask"));
    check_against<T>(g, dx, [&] { return loss::cross_entropy.forward_backward(x, y, m, dx); },
                     [&] { return loss::cross_entropy(x, y, m); });
}

TEMPLATE_TEST_CASE("cross_entropy on rank-1 logits with large values matches PyTorch", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_ce_rank1.txt");
    tensor<T, shape<6>> x, dx;
    tensor<int, shape<>> y;
    load(x, section(g, "logits"));
    load(y, section(g, "targets"));
    check_against<T>(g, dx, [&] { return loss::cross_entropy.forward_backward(x, y, dx); },
                     [&] { return loss::cross_entropy(x, y); });
}

TEMPLATE_TEST_CASE("mse matches PyTorch", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_mse.txt");
    tensor<T, shape<3, 4>> p, dp;
    tensor<T, shape<3, 4>> y;
    load(p, section(g, "predictions"));
    load(y, section(g, "targets"));
    check_against<T>(g, dp, [&] { return loss::mse.forward_backward(p, y, dp); }, [&] { return loss::mse(p, y); });
}

TEMPLATE_TEST_CASE("binary_cross_entropy_with_logits matches PyTorch, large logits included", "", float, double) {
    using T = TestType;
    const auto g = read_golden("loss_bce.txt");
    tensor<T, shape<4, 5>> x, dx;
    tensor<T, shape<4, 5>> y;
    load(x, section(g, "logits"));
    load(y, section(g, "targets"));
    check_against<T>(g, dx, [&] { return loss::binary_cross_entropy_with_logits.forward_backward(x, y, dx); },
                     [&] { return loss::binary_cross_entropy_with_logits(x, y); });
}

// ---------------------------------------------------------------- finite differences (double)

TEST_CASE("every loss's gradient matches central finite differences in double") {
    SECTION("cross_entropy") {
        tensor<double, shape<3, 4, 6>> x, dx;
        tensor<int, shape<3, 4>> y;
        fill_pseudo_random(x, 1, 6);
        for (std::size_t i = 0; i < 12; ++i) y.data()[i] = static_cast<int>((i * 5) % 6);
        loss::cross_entropy.forward_backward(x, y, dx);
        check_finite_differences(x, dx, [&] { return loss::cross_entropy(x, y); });
    }
    SECTION("cross_entropy with ignore_index and a mask") {
        tensor<double, shape<7, 5>> x, dx;
        tensor<long, shape<7>> y{};
        tensor<double, shape<7>> m;
        fill_pseudo_random(x, 2, 4);
        const long targets[7] = {0, -1, 4, 2, -1, 3, 1};
        const double weights[7] = {1, 1, 0.5, 0, 3, 0.125, 2};
        for (std::size_t i = 0; i < 7; ++i) y(i) = targets[i], m(i) = weights[i];
        const loss::cross_entropy_t ce{.ignore_index = -1};
        ce.forward_backward(x, y, m, dx);
        check_finite_differences(x, dx, [&] { return ce(x, y, m); });
        for (std::size_t j = 0; j < 5; ++j) CHECK(dx(1, j) == 0.0);  // ignored row
        for (std::size_t j = 0; j < 5; ++j) CHECK(dx(3, j) == 0.0);  // mask 0
    }
    SECTION("mse") {
        tensor<double, shape<4, 3, 2>> p, y, dp;
        fill_pseudo_random(p, 3, 2);
        fill_pseudo_random(y, 4, 2);
        loss::mse.forward_backward(p, y, dp);
        check_finite_differences(p, dp, [&] { return loss::mse(p, y); });
    }
    SECTION("binary_cross_entropy_with_logits") {
        tensor<double, shape<5, 4>> x, y, dx;
        fill_pseudo_random(x, 5, 12);
        fill_pseudo_random(y, 6, 1);
        for (auto& v : y) v += 0.5;  // probabilities in [0, 1]
        loss::binary_cross_entropy_with_logits.forward_backward(x, y, dx);
        check_finite_differences(x, dx, [&] { return loss::binary_cross_entropy_with_logits(x, y); });
    }
}

// ---------------------------------------------------------------- passes

TEST_CASE("cross_entropy forward_backward is one softmax pass and nothing else") {
    tensor<float, shape<8, 10>> x, dx;
    tensor<int, shape<8>> y;
    tensor<float, shape<8>> m(1.f);
    fill_pseudo_random(x, 7);
    ctdl::count_passes counting;
    loss::cross_entropy.forward_backward(x, y, dx);
    CHECK(counting.counts()[ctdl::pass::softmax] == 1);
    CHECK(counting.counts().total() == 1);
    counting.reset();
    loss::cross_entropy.forward_backward(x, y, m, dx);
    loss::cross_entropy(x, y);
    CHECK(counting.counts()[ctdl::pass::softmax] == 2);
    CHECK(counting.counts().total() == 2);
    counting.reset();
    loss::mse.forward_backward(x, dx, dx);
    loss::binary_cross_entropy_with_logits.forward_backward(x, x, dx);
    CHECK(counting.counts()[ctdl::pass::map] == 2);
    CHECK(counting.counts().total() == 2);
    counting.reset();
    loss::mse(x, x);
    loss::binary_cross_entropy_with_logits(x, x);
    CHECK(counting.counts()[ctdl::pass::reduce] == 2);
    CHECK(counting.counts().total() == 2);
}

// ---------------------------------------------------------------- bad input, edge cases

TEST_CASE("a target outside 0 .. C-1 throws ctdl::error naming the row and the value, and writes nothing") {
    tensor<float, shape<4, 10>> x, dx(7.f);
    tensor<int, shape<4>> y;
    y(2) = 10;
    CHECK_THROWS_AS(loss::cross_entropy(x, y), ctdl::error);
    CHECK_THROWS_WITH(loss::cross_entropy.forward_backward(x, y, dx),
                      Catch::Contains("target 10 at row 2") && Catch::Contains("[0, 10)"));
    for (float v : dx) CHECK(v == 7.f);
    y(2) = -100;
    CHECK_THROWS_WITH(loss::cross_entropy(x, y), Catch::Contains("target -100 at row 2"));
    CHECK_NOTHROW(loss::cross_entropy_t{.ignore_index = -100}(x, y));
    y(2) = -1;
    CHECK_THROWS_WITH(loss::cross_entropy_t{.ignore_index = -100}(x, y), Catch::Contains("not ignore_index (-100)"));

    tensor<float, shape<2, 3, 5>> x3;
    tensor<unsigned, shape<2, 3>> y3;
    y3(1, 2) = 5;
    CHECK_THROWS_WITH(loss::cross_entropy(x3, y3), Catch::Contains("row 5 (index [1, 2] of targets shape [2, 3])"));
}

TEST_CASE("a negative or non-finite mask value throws ctdl::error") {
    tensor<double, shape<3, 4>> x;
    tensor<int, shape<3>> y;
    tensor<double, shape<3>> m(1.0);
    m(1) = -0.5;
    CHECK_THROWS_WITH(loss::cross_entropy(x, y, m), Catch::Contains("mask value -0.5") && Catch::Contains("row 1"));
    m(1) = NAN;
    CHECK_THROWS_AS(loss::cross_entropy(x, y, m), ctdl::error);
}

TEST_CASE("when every row is ignored or masked out the loss and the gradient are zero") {
    tensor<float, shape<3, 4>> x, dx(5.f);
    fill_pseudo_random(x, 8);
    tensor<int, shape<3>> y(-100);
    const loss::cross_entropy_t ce{.ignore_index = -100};
    CHECK(ce.forward_backward(x, y, dx) == 0.f);
    for (float v : dx) CHECK(v == 0.f);
    tensor<int, shape<3>> y0;
    tensor<float, shape<3>> none;
    fill(dx, 5.f);
    CHECK(loss::cross_entropy.forward_backward(x, y0, none, dx) == 0.f);
    for (float v : dx) CHECK(v == 0.f);
}

TEST_CASE("losses are function objects that take tensors and views") {
    tensor<float, shape<4, 6, 3>> x, dx;
    tensor<std::uint8_t, shape<4, 6>> y;
    fill_pseudo_random(x, 9, 4);
    for (std::size_t i = 0; i < 24; ++i) y.data()[i] = static_cast<std::uint8_t>(i % 3);
    const float whole = evaluate(loss::cross_entropy, x, y);
    // The same rows through views: flattened to [24, 3], and the gradient into a view.
    const float flat = loss::cross_entropy(x.reshape<shape<24, 3>>(), y.reshape<shape<24>>());
    CHECK(flat == whole);
    const float fb = loss::cross_entropy.forward_backward(x, y, dx.reshape<shape<4, 6, 3>>());
    CHECK(fb == whole);
    // Gradient rows sum to zero (softmax minus one-hot).
    for (std::size_t r = 0; r < 4; ++r)
        for (std::size_t c = 0; c < 6; ++c) CHECK(dx(r, c, 0) + dx(r, c, 1) + dx(r, c, 2) == Approx(0).margin(1e-7));
    // A slice of rows is a batch of its own.
    const float half = loss::cross_entropy(x.slice<0, 2>(), y.slice<0, 2>());
    CHECK(std::isfinite(half));
    STATIC_REQUIRE(std::same_as<decltype(evaluate(loss::mse, x, x)), float>);
}

TEST_CASE("every loss, forward and forward_backward, is bitwise the same on one thread and on two") {
    // Large enough that each sum runs on the pool (n times the work hint >= cpu::parallel_work).
    constexpr std::size_t rows = 512, classes = 257;
    STATIC_REQUIRE(rows * classes >= ctdl::cpu::parallel_work);
    const std::size_t threads = ctdl::cpu::threads();
    auto run = [](std::size_t n) {
        ctdl::cpu::set_threads(n);
        tensor<float, shape<rows, classes>> x, t, dx;
        tensor<int, shape<rows>> y, padded;
        tensor<float, shape<rows>> mask;
        fill_pseudo_random(x, 10, 8);
        fill_pseudo_random(t, 11, 1);
        for (auto& v : t) v += 0.5f;  // probabilities in [0, 1]
        for (std::size_t i = 0; i < rows; ++i) {
            y(i) = static_cast<int>((i * 37) % classes);
            padded(i) = i % 5 == 0 ? -100 : y(i);
            mask(i) = static_cast<float>(i % 3) * 0.5f;
        }
        const loss::cross_entropy_t ignoring{.ignore_index = -100};
        std::vector<float> out;
        auto with_gradient = [&](float l) {
            out.push_back(l);
            out.insert(out.end(), dx.begin(), dx.end());
        };
        out.push_back(loss::cross_entropy(x, y));
        with_gradient(loss::cross_entropy.forward_backward(x, y, dx));
        out.push_back(loss::cross_entropy(x, y, mask));
        with_gradient(loss::cross_entropy.forward_backward(x, y, mask, dx));
        out.push_back(ignoring(x, padded));
        with_gradient(ignoring.forward_backward(x, padded, dx));
        out.push_back(loss::binary_cross_entropy_with_logits(x, t));
        with_gradient(loss::binary_cross_entropy_with_logits.forward_backward(x, t, dx));
        out.push_back(loss::mse(x, t));
        with_gradient(loss::mse.forward_backward(x, t, dx));
        return out;
    };
    const auto one = run(1), two = run(2);
    ctdl::cpu::set_threads(threads);
    REQUIRE(one.size() == two.size());
    std::size_t differ = 0;
    for (std::size_t i = 0; i < one.size(); ++i) differ += std::memcmp(&one[i], &two[i], sizeof(float)) != 0;
    CHECK(differ == 0);
}

TEST_CASE("cpu::sum adds 256 chunks fixed by n, in order, on any thread count") {
    const std::size_t threads = ctdl::cpu::threads();
    for (const std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{255}, std::size_t{256}, std::size_t{1000},
                                std::size_t{100003}}) {
        std::vector<double> v(n);
        unsigned s = 12345;
        for (auto& e : v) {
            s = s * 1664525u + 1013904223u;
            e = static_cast<double>(s >> 8) * 1e-3 - (s & 1 ? 1e4 : 0.0);  // cancellation: order shows
        }
        double want = 0;
        for (std::size_t c = 0; c < 256; ++c) {
            double partial = 0;
            for (std::size_t i = n * c / 256; i < n * (c + 1) / 256; ++i) partial += v[i];
            want += partial;
        }
        const auto f = [&](std::size_t i) { return v[i]; };
        for (const std::size_t t : {1, 2, 3}) {
            ctdl::cpu::set_threads(t);
            INFO("n " << n << ", threads " << t);
            CHECK(std::bit_cast<std::uint64_t>(ctdl::cpu::sum(n, f)) == std::bit_cast<std::uint64_t>(want));
            CHECK(std::bit_cast<std::uint64_t>(ctdl::cpu::sum(n, f, 64)) == std::bit_cast<std::uint64_t>(want));
        }
    }
    ctdl::cpu::set_threads(threads);
}
