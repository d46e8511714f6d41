#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <cstdint>
#include <type_traits>

using ctdl::shape;
using ctdl::tensor;

TEST_CASE("tensor storage is zeroed, 64-byte aligned and row-major") {
    tensor<float, shape<3, 5, 7>> t;
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    for (float v : t) CHECK(v == 0.f);
    t(2, 4, 6) = 3.f;
    t(1, 0, 2) = 4.f;
    CHECK(t.data()[2 * 35 + 4 * 7 + 6] == 3.f);
    CHECK(t.data()[1 * 35 + 2] == 4.f);
    tensor<double, shape<4>> d(2.5);
    for (double v : d) CHECK(v == 2.5);
    tensor<int, shape<2, 2>> i;
    i(1, 1) = 7;
    CHECK(i.data()[3] == 7);
}

TEST_CASE("views, slices, rows and reshapes alias the tensor") {
    tensor<float, shape<4, 3>> x;
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 3; ++j) x(i, j) = static_cast<float>(10 * i + j);

    auto rows = x.slice<1, 2>();
    static_assert(std::is_same_v<decltype(rows), ctdl::tensor_view<float, shape<2, 3>>>);
    CHECK(rows(0, 0) == 10.f);
    CHECK(rows(1, 2) == 22.f);
    rows(1, 1) = -1.f;
    CHECK(x(2, 1) == -1.f);

    auto r = x[3];
    static_assert(std::is_same_v<decltype(r), ctdl::tensor_view<float, shape<3>>>);
    CHECK(r(2) == 32.f);
    CHECK_THROWS_AS(x[4], ctdl::error);

    auto flat = x.reshape<shape<12>>();
    CHECK(flat(11) == 32.f);
    CHECK(flat.data() == x.data());

    const auto& cx = x;
    auto cv = cx.view();
    static_assert(std::is_same_v<decltype(cv(0, 0)), const float&>);
    static_assert(std::is_same_v<decltype(cx(0, 0)), const float&>);
    ctdl::tensor_view<const float, shape<4, 3>> from_mutable = x.view();
    CHECK(from_mutable(0, 1) == 1.f);
}

TEST_CASE("at() checks every index") {
    tensor<float, shape<2, 3>> x;
    x.at(1, 2) = 1.f;
    CHECK(x(1, 2) == 1.f);
    CHECK_THROWS_AS(x.at(2, 0), ctdl::error);
    CHECK_THROWS_AS(x.at(0, 3), ctdl::error);
    CHECK_THROWS_WITH(x.at(0, 3), Catch::Contains("axis 1"));
}

TEST_CASE("fill, copy, equal, allclose, max_abs_diff") {
    tensor<float, shape<3, 4>> a, b;
    ctdl::fill(a, 1.25f);
    for (float v : a) CHECK(v == 1.25f);
    CHECK_FALSE(ctdl::equal(a, b));
    ctdl::copy(a, b);
    CHECK(ctdl::equal(a, b));
    b(2, 3) = 1.25f + 1e-3f;
    CHECK_FALSE(ctdl::equal(a, b));
    CHECK(ctdl::max_abs_diff(a, b) == Approx(1e-3).epsilon(1e-3));
    CHECK(ctdl::allclose(a, b, 1e-2));
    CHECK_FALSE(ctdl::allclose(a, b, 1e-5));
    b(0, 0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_FALSE(ctdl::allclose(a, b, 1.0, 1.0));
    // copy into a view of a bigger tensor
    tensor<float, shape<6, 4>> big;
    ctdl::copy(a, big.slice<3, 3>());
    CHECK(big(2, 0) == 0.f);
    CHECK(big(3, 0) == 1.25f);
    CHECK(big(5, 3) == 1.25f);
}

TEST_CASE("tensors copy and move by value") {
    tensor<float, shape<2, 2>> a(3.f);
    auto b = a;
    b(0, 0) = 1.f;
    CHECK(a(0, 0) == 3.f);
    const float* p = b.data();
    auto c = std::move(b);
    CHECK(c.data() == p);
    CHECK(c(0, 0) == 1.f);
    a = c;
    CHECK(a(0, 0) == 1.f);
}
