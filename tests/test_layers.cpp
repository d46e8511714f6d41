// Layers and graphs: gradients against finite differences (double), fusion and pruning
// by pass counts, parameter names, frozen models.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include "gradcheck.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;
using ctdl_test::gradcheck;

template <class Arch, class In>
double check_arch(std::uint64_t seed = 3) {
    ctdl::model<Arch, ctdl::cpu, double> net{ctdl::seed{seed}};
    ctdl::tensor<double, In> x;
    ctdl_test::fill_uniform(x, 7);
    const auto r = gradcheck(net, x);
    REQUIRE(r.checked == ctdl::model<Arch, ctdl::cpu, double>::gradient_count);
    return r.max_rel_error;
}

TEST_CASE("linear: backward matches finite differences") {
    CHECK(check_arch<nn::linear<5, 3>, shape<4, 5>>() < 1e-6);
    CHECK(check_arch<nn::linear<7, 2, false>, shape<3, 7>>() < 1e-6);
    CHECK(check_arch<nn::linear<6, 4>, shape<2, 3, 6>>() < 1e-6);  // leading axes are rows
}

TEST_CASE("linear + activation fused into the GEMM: backward matches finite differences") {
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::relu, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::tanh, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::sigmoid, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::gelu_tanh, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::gelu_exact, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    // a chain of two activations after a linear (the GEMM keeps its raw output)
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::tanh, nn::sigmoid, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    // an activation at the very end (its derivative applied to dy before the backward)
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::tanh>, shape<6, 5>>() < 1e-6);
}

TEST_CASE("standalone activations, layer_norm, softmax: backward matches finite differences") {
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::layer_norm<8>, nn::gelu_exact, nn::linear<8, 3>>,
                     shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::layer_norm<8>, nn::tanh, nn::sigmoid, nn::linear<8, 3>>,
                     shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::softmax, nn::linear<8, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::layer_norm<5>, nn::linear<5, 3>>, shape<6, 5>>() < 1e-6);
}

TEST_CASE("rms_norm: backward matches finite differences, through it and into its weight") {
    // rms_norm between two linears: its dx reaches the first linear, its dw is checked itself
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::rms_norm<8>, nn::gelu_tanh, nn::linear<8, 3>>,
                     shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::rms_norm<8, std::ratio<1, 100>>, nn::linear<8, 3>>, shape<2, 3, 5>>() <
          1e-6);
    // first in the model (no dx needed), and after a frozen part (dx needed through a frozen rms_norm)
    CHECK(check_arch<nn::sequential<nn::rms_norm<5>, nn::linear<5, 3>>, shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, ctdl::frozen<nn::rms_norm<8>>, nn::linear<8, 3>>, shape<6, 5>>() <
          1e-6);
    static_assert(ctdl::parameter_count<nn::rms_norm<8>> == 8);
    static_assert(ctdl::trainable_parameter_count<ctdl::frozen<nn::rms_norm<8>>> == 0);
}

TEST_CASE("rms_norm: the weight is named as torch.nn.RMSNorm names it, and starts at one") {
    using M = ctdl::model<nn::sequential<nn::linear<4, 6>, nn::rms_norm<6>>>;
    M net{ctdl::seed{1}};
    const auto table = M::parameter_table();
    REQUIRE(table.size() == 3);
    CHECK(table[2].name == "1.weight");
    CHECK(table[2].size == 6);
    for (float w : net.parameter("1.weight").values) CHECK(w == 1.0f);
}

TEST_CASE("residual and repeat: backward matches finite differences") {
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::residual<nn::linear<8, 8>, nn::relu>, nn::linear<8, 3>>,
                     shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<5, 8>, nn::residual<nn::layer_norm<8>, nn::linear<8, 8>>>,
                     shape<6, 5>>() < 1e-6);
    CHECK(check_arch<nn::sequential<nn::linear<4, 6>, nn::repeat<3, nn::sequential<nn::linear<6, 6>, nn::tanh>>>,
                     shape<5, 4>>() < 1e-6);
}

TEST_CASE("frozen parts: gradients flow through them, and only where needed") {
    // a frozen layer in the middle: dX must pass through it to reach the first layer
    using A = nn::sequential<nn::linear<5, 8>, nn::relu, ctdl::frozen<nn::linear<8, 8>>, nn::tanh, nn::linear<8, 3>>;
    static_assert(ctdl::model<A>::gradient_count == 5 * 8 + 8 + 8 * 3 + 3);
    CHECK(check_arch<A, shape<6, 5>>() < 1e-6);
    using B = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<5, 8>, nn::relu>>, nn::linear<8, 3>>;
    CHECK(check_arch<B, shape<6, 5>>() < 1e-6);
}

TEST_CASE("dropout: identity at inference, and in training, masks with the right rate and scale") {
    using A = nn::sequential<nn::linear<16, 64>, nn::dropout<0.25>>;
    ctdl::model<A> net{ctdl::seed{5}};
    ctdl::tensor<float, shape<64, 16>> x;
    ctdl_test::fill_uniform(x, 1);
    ctdl::model<nn::linear<16, 64>> plain;
    std::copy_n(net.parameters(), ctdl::parameter_count<A>, plain.parameters());
    const auto inference = net.forward(x);
    CHECK(ctdl::equal(inference, plain.forward(x)));
    auto& acts = net.activations_for<shape<64, 16>>();
    const auto& train = net.forward(x, acts);
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < train.size; ++i) {
        if (train.data()[i] == 0.f) ++zeros;
        else CHECK(train.data()[i] == Approx(inference.data()[i] / 0.75f));
    }
    const double rate = static_cast<double>(zeros) / train.size;
    CHECK(rate > 0.22);
    CHECK(rate < 0.28);
    // backward multiplies by the same mask
    ctdl::tensor<float, shape<64, 64>> dy(1.f);
    net.backward(acts, x, dy);
    ctdl::tensor<float, shape<64, 64>> mask;
    for (std::size_t i = 0; i < mask.size; ++i) mask.data()[i] = train.data()[i] == 0.f ? 0.f : 1.f / 0.75f;
    // db = column sums of dy ⊙ mask
    for (std::size_t c = 0; c < 64; ++c) {
        double s = 0;
        for (std::size_t r = 0; r < 64; ++r) s += mask(r, c);
        CHECK(net.gradients()[16 * 64 + c] == Approx(s).epsilon(1e-5));
    }
}

using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

TEST_CASE("fusion: the MLP's forward is exactly 3 GEMM passes") {
    ctdl::model<mlp> net{ctdl::seed{7}};
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl_test::fill_uniform(x, 2);
    auto& acts = net.activations_for<shape<64, 784>>();
    ctdl::count_passes counting;
    net.forward(x, acts);
    CHECK(counting.counts()[ctdl::pass::gemm] == 3);
    CHECK(counting.counts().total() == 3);
    counting.reset();
    // backward: dW for 3 layers, dX for the 2 upper ones (ReLU' folded into their epilogues), 3 bias sums
    ctdl::tensor<float, shape<64, 10>> dy(0.5f);
    net.backward(acts, x, dy);
    CHECK(counting.counts()[ctdl::pass::gemm] == 5);
    CHECK(counting.counts()[ctdl::pass::reduce] == 3);
    CHECK(counting.counts().total() == 8);
}

TEST_CASE("pruning: a frozen body costs the backward pass nothing") {
    using tune_head = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<784, 256>, nn::relu>>, nn::linear<256, 10>>;
    ctdl::model<tune_head> net{ctdl::seed{7}};
    static_assert(ctdl::model<tune_head>::gradient_count == 256 * 10 + 10);
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl_test::fill_uniform(x, 2);
    auto& acts = net.activations_for<shape<64, 784>>();
    net.forward(x, acts);
    ctdl::tensor<float, shape<64, 10>> dy(0.5f);
    ctdl::count_passes counting;
    net.backward(acts, x, dy);
    CHECK(counting.counts()[ctdl::pass::gemm] == 1);    // dW of the head
    CHECK(counting.counts()[ctdl::pass::reduce] == 1);  // db of the head
    CHECK(counting.counts().total() == 2);
}

TEST_CASE("parameter names and layouts follow PyTorch's state_dict") {
    const auto& t = ctdl::model<mlp>::parameter_table();
    REQUIRE(t.size() == 6);
    CHECK(t[0].name == "0.weight");
    CHECK(t[0].shape == std::vector<std::size_t>{256, 784});
    CHECK(t[1].name == "0.bias");
    CHECK(t[2].name == "2.weight");
    CHECK(t[4].name == "4.weight");
    CHECK(t[5].name == "4.bias");
    CHECK(t[5].offset + t[5].size == ctdl::parameter_count<mlp>);
    using nested = nn::sequential<nn::sequential<nn::linear<2, 3>, nn::tanh>, ctdl::frozen<nn::layer_norm<3>>,
                                  nn::repeat<2, nn::linear<3, 3>>>;
    const auto& n = ctdl::model<nested>::parameter_table();
    REQUIRE(n.size() == 8);
    CHECK(n[0].name == "0.0.weight");
    CHECK(n[2].name == "1.weight");
    CHECK_FALSE(n[2].trainable);
    CHECK(n[4].name == "2.0.weight");
    CHECK(n[7].name == "2.1.bias");
    CHECK(n[7].trainable);
    constexpr auto segs = ctdl::model<nested>::gradient_segments;
    static_assert(segs.size() == 2);
    static_assert(segs[0].param_offset == 0 && segs[0].size == 9 && segs[0].grad_offset == 0);
    static_assert(segs[1].param_offset == 15 && segs[1].grad_offset == 9 && segs[1].size == 24);
}

TEST_CASE("linear is initialised as torch.nn.Linear: U(-1/sqrt(in), 1/sqrt(in))") {
    ctdl::model<nn::linear<400, 300>> net{ctdl::seed{11}};
    const double bound = 1.0 / std::sqrt(400.0);
    double lo = 1, hi = -1, mean = 0;
    for (std::size_t i = 0; i < ctdl::parameter_count<nn::linear<400, 300>>; ++i) {
        const double v = net.parameters()[i];
        lo = std::min(lo, v);
        hi = std::max(hi, v);
        mean += v;
    }
    mean /= ctdl::parameter_count<nn::linear<400, 300>>;
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(lo < -0.99 * bound);
    CHECK(hi > 0.99 * bound);
    CHECK(std::abs(mean) < 0.01 * bound);
    ctdl::model<nn::linear<400, 300>> same{ctdl::seed{11}}, other{ctdl::seed{12}};
    CHECK(std::equal(net.parameters(), net.parameters() + 1000, same.parameters()));
    CHECK_FALSE(std::equal(net.parameters(), net.parameters() + 1000, other.parameters()));
}

template <class M>
concept has_gradients = requires(M& m) { m.gradients(); };

TEST_CASE("frozen models: no gradients, same function, and freeze() moves the parameters") {
    using F = ctdl::model<ctdl::frozen<mlp>>;
    static_assert(!ctdl::trainable<F>);
    static_assert(!has_gradients<F>);
    static_assert(has_gradients<ctdl::model<mlp>>);
    static_assert(!F::activations<shape<64, 784>>::backward_needed);
    ctdl::model<mlp> net{ctdl::seed{3}};
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl_test::fill_uniform(x, 4);
    const auto a = net.forward(x);
    const float* p = net.parameters();
    F frozen = ctdl::freeze(std::move(net));
    CHECK(frozen.parameters() == p);  // no copy
    CHECK(ctdl::equal(a, frozen.forward(x)));
}

template <std::size_t B>
void check_small_batch_frozen() {
    ctdl::model<mlp> net{ctdl::seed{5}};
    ctdl::tensor<float, shape<B, 784>> x;
    ctdl_test::fill_uniform(x, 6);
    ctdl::model<ctdl::frozen<mlp>> frozen{ctdl::seed{5}};
    // At batch <= 4 the frozen model runs from packed weights: the same numbers, bit for bit,
    // and still one GEMM per linear layer.
    ctdl::count_passes counting;
    const auto b = frozen.forward(x);
    CHECK(counting.counts()[ctdl::pass::gemm] == 3);
    CHECK(counting.counts().total() == 3);
    CHECK(ctdl::equal(net.forward(x), b));
    // Changes through parameters() reach the next forward (the packs are made again).
    frozen.parameters()[1] += 0.5f;
    net.parameters()[1] += 0.5f;
    const auto c = frozen.forward(x);
    CHECK(!ctdl::equal(b, c));
    CHECK(ctdl::equal(net.forward(x), c));
    // So does copying another model's parameters in.
    ctdl::model<ctdl::frozen<mlp>> other{ctdl::seed{8}};
    frozen = other;
    CHECK(ctdl::equal(frozen.forward(x), other.forward(x)));
    CHECK(!ctdl::equal(frozen.forward(x), c));
}

TEST_CASE("frozen models at batch 1-4 (packed weights) compute what the trainable model does") {
    const std::size_t threads = ctdl::cpu::threads();
    for (std::size_t t : {1, 2}) {  // one thread runs from the packs, two from the weights
        ctdl::cpu::set_threads(t);
        CHECK(ctdl::kernel<ctdl::ops::linear_forward, ctdl::cpu>::use_packed() == (t == 1));
        check_small_batch_frozen<1>();
        check_small_batch_frozen<3>();
        check_small_batch_frozen<4>();
    }
    ctdl::cpu::set_threads(threads);
}

TEST_CASE("results do not depend on the thread count") {
    ctdl::model<mlp> net{ctdl::seed{3}};
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl_test::fill_uniform(x, 4);
    const std::size_t threads = ctdl::cpu::threads();
    ctdl::cpu::set_threads(1);
    const auto one = net.forward(x);
    auto& acts = net.activations_for<shape<64, 784>>();
    net.forward(x, acts);
    ctdl::tensor<float, shape<64, 10>> dy(0.25f);
    net.backward(acts, x, dy);
    std::vector<float> g1(net.gradients(), net.gradients() + net.gradient_count);
    ctdl::cpu::set_threads(2);
    const auto two = net.forward(x);
    net.forward(x, acts);
    ctdl::tensor<float, shape<64, 10>> dy2(0.25f);
    net.backward(acts, x, dy2);
    ctdl::cpu::set_threads(threads);
    CHECK(ctdl::equal(one, two));
    CHECK(std::equal(g1.begin(), g1.end(), net.gradients()));
}

TEST_CASE("math::tanh and math::exp for float agree with the standard library in double") {
    double worst_tanh = 0, worst_exp = 0;
    for (int i = -200000; i <= 200000; ++i) {
        const float x = static_cast<float>(i) * 1e-4f;  // [-20, 20]
        const double t = std::tanh(static_cast<double>(x));
        worst_tanh = std::max(worst_tanh, std::abs(ctdl::math::tanh(x) - t) / std::max(std::abs(t), 1e-30));
        if (x < 80.f) {
            const double e = std::exp(static_cast<double>(x));
            worst_exp = std::max(worst_exp, std::abs(ctdl::math::exp(x) - e) / e);
        }
    }
    CHECK(worst_tanh < 1e-6);
    CHECK(worst_exp < 3e-7);
    CHECK(ctdl::math::tanh(0.0f) == 0.0f);
    CHECK(ctdl::math::tanh(50.0f) == 1.0f);
    CHECK(ctdl::math::tanh(-50.0f) == -1.0f);
}
