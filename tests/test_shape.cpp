#include <catch2/catch.hpp>
#include <ctdl/core/shape.hpp>

#include <type_traits>

using ctdl::shape;

static_assert(shape<2, 3, 4>::rank == 3);
static_assert(shape<2, 3, 4>::size == 24);
static_assert(shape<7>::size == 7);
static_assert(shape<>::rank == 0 && shape<>::size == 1);
static_assert(shape<2, 3, 4>::strides == std::array<std::size_t, 3>{12, 4, 1});
static_assert(shape<2, 3, 4>::extent<1> == 3);
static_assert(ctdl::shape_like<shape<1, 2>> && !ctdl::shape_like<int>);

// matmul: [M, K] x [K, N] -> [M, N]
static_assert(std::is_same_v<ctdl::matmul_shape<shape<64, 784>, shape<784, 256>>, shape<64, 256>>);
static_assert(std::is_same_v<ctdl::matmul_shape<shape<1, 5>, shape<5, 1>>, shape<1, 1>>);
// transpose swaps the last two axes
static_assert(std::is_same_v<ctdl::transpose_shape<shape<3, 5>>, shape<5, 3>>);
static_assert(std::is_same_v<ctdl::transpose_shape<shape<2, 3, 5>>, shape<2, 5, 3>>);
// broadcasting aligns from the right
static_assert(std::is_same_v<ctdl::broadcast_shape<shape<8, 1, 6>, shape<7, 1>>, shape<8, 7, 6>>);
static_assert(std::is_same_v<ctdl::broadcast_shape<shape<4>, shape<3, 4>>, shape<3, 4>>);
static_assert(ctdl::broadcastable_v<shape<3, 1>, shape<1, 4>>);
static_assert(!ctdl::broadcastable_v<shape<3, 2>, shape<4>>);
// reshape keeps the element count
static_assert(std::is_same_v<ctdl::reshape_shape<shape<4, 6>, shape<2, 12>>, shape<2, 12>>);
// concat along an axis
static_assert(std::is_same_v<ctdl::concat_shape<0, shape<2, 3>, shape<5, 3>>, shape<7, 3>>);
static_assert(std::is_same_v<ctdl::concat_shape<1, shape<2, 3>, shape<2, 1>>, shape<2, 4>>);
// building shapes
static_assert(std::is_same_v<ctdl::prepend<9, shape<2, 3>>, shape<9, 2, 3>>);
static_assert(std::is_same_v<ctdl::append<shape<2, 3>, 9>, shape<2, 3, 9>>);
static_assert(std::is_same_v<ctdl::drop_front<1, shape<2, 3, 4>>, shape<3, 4>>);
static_assert(std::is_same_v<ctdl::with_last<shape<2, 3, 4>, 10>, shape<2, 3, 10>>);
static_assert(ctdl::leading_size<shape<2, 3, 4>> == 6 && ctdl::last_extent<shape<2, 3, 4>> == 4);

TEST_CASE("shape extents and strides are usable at run time") {
    using S = shape<5, 1, 3>;
    std::size_t prod = 1;
    for (auto e : S::extents) prod *= e;
    CHECK(prod == S::size);
    // Row-major: the stride of an axis is the product of the extents after it.
    for (std::size_t a = 0; a < S::rank; ++a) {
        std::size_t expect = 1;
        for (std::size_t b = a + 1; b < S::rank; ++b) expect *= S::extents[b];
        CHECK(S::strides[a] == expect);
    }
}
