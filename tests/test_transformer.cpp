// Transformer layers: embeddings and causal self-attention, gradients against finite
// differences in double; causality; the GPT type.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt.hpp>

#include "gradcheck.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;
using ctdl_test::gradcheck;

namespace {
template <class Arch, class X>
double check(const X& x, std::uint64_t seed = 3) {
    ctdl::model<Arch, ctdl::cpu, double> net{ctdl::seed{seed}};
    const auto r = gradcheck(net, x);
    REQUIRE(r.checked == ctdl::model<Arch, ctdl::cpu, double>::gradient_count);
    return r.max_rel_error;
}

template <std::size_t B, std::size_t T>
ctdl::tensor<int, shape<B, T>> ids(int vocab, int salt = 0) {
    ctdl::tensor<int, shape<B, T>> x;
    for (std::size_t i = 0; i < B * T; ++i) x.data()[i] = static_cast<int>((i * 7 + static_cast<std::size_t>(salt)) % static_cast<std::size_t>(vocab));
    return x;
}
}  // namespace

TEST_CASE("embedding and position embedding: backward matches finite differences") {
    // repeated ids, so the scatter-add accumulates
    CHECK(check<nn::sequential<nn::embedding<5, 4>, nn::linear<4, 3>>>(ids<3, 4>(5)) < 1e-6);
    CHECK(check<nn::sequential<nn::embedding<6, 4>, nn::position_embedding<8, 4>, nn::tanh, nn::linear<4, 3>>>(
              ids<2, 5>(6)) < 1e-6);
}

TEST_CASE("causal self-attention: backward matches finite differences") {
    ctdl::tensor<double, shape<2, 5, 8>> x;
    ctdl_test::fill_uniform(x, 11);
    CHECK(check<nn::sequential<nn::linear<8, 8>, nn::causal_self_attention<8, 2>>>(x) < 1e-6);
    CHECK(check<nn::sequential<nn::linear<8, 8>, nn::residual<nn::layer_norm<8>, nn::causal_self_attention<8, 4>>,
                               nn::linear<8, 3>>>(x) < 1e-6);
}

TEST_CASE("a small GPT: backward matches finite differences end to end") {
    using tiny = ctdl::models::gpt<7, 6, 8, 2, 2, 12>;
    CHECK(check<tiny>(ids<2, 6>(7, 1)) < 1e-6);
}

TEST_CASE("attention is causal: position t does not see positions after t") {
    using A = nn::sequential<nn::embedding<11, 8>, nn::position_embedding<6, 8>, nn::causal_self_attention<8, 2>>;
    ctdl::model<A> net{ctdl::seed{2}};
    auto x = ids<1, 6>(11);
    const auto y0 = net.forward(x);
    x(0, 4) = 10;  // change the token at position 4
    const auto y1 = net.forward(x);
    for (std::size_t t = 0; t < 6; ++t)
        for (std::size_t c = 0; c < 8; ++c) {
            if (t < 4) CHECK(y0(0, t, c) == y1(0, t, c));  // earlier positions unchanged, bitwise
        }
    bool later_changed = false;
    for (std::size_t c = 0; c < 8; ++c) later_changed |= y0(0, 5, c) != y1(0, 5, c);
    CHECK(later_changed);
}

TEST_CASE("an id outside the vocabulary is refused with ctdl::error") {
    ctdl::model<nn::sequential<nn::embedding<5, 4>, nn::linear<4, 2>>> net;
    auto x = ids<2, 3>(5);
    x(1, 2) = 5;
    CHECK_THROWS_WITH(net.forward(x), Catch::Contains("token id 5 at position 5") && Catch::Contains("[0, 5)"));
    x(1, 2) = -1;
    CHECK_THROWS_AS(net.forward(x), ctdl::error);
}

TEST_CASE("the GPT type: names, parameter count, a training step lowers the loss") {
    using G = ctdl::models::gpt<96, 64, 128, 4, 4, 512>;
    // embeddings, 4 blocks (2 layer norms, attention, MLP), final layer norm, untied head
    constexpr std::size_t D = 128, block = 2 * 2 * D + (4 * D * D + 4 * D) + (D * 512 + 512 + 512 * D + D);
    static_assert(ctdl::parameter_count<G> == 96 * D + 64 * D + 4 * block + 2 * D + D * 96);
    const auto& t = ctdl::model<G>::parameter_table();
    CHECK(t[0].name == "0.weight");
    CHECK(t[2].name == "2.0.0.0.weight");
    CHECK(t[4].name == "2.0.0.1.qkv.weight");
    CHECK(t.back().name == "4.weight");
    CHECK(t.back().shape == std::vector<std::size_t>{96, 128});
}
