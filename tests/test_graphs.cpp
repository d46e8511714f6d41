// Graphs as a user builds them: frozen parts inside residual blocks, connections checked
// from the types, freezing parts of an existing architecture without renaming, optimizers
// bound to their model, named parameter access, the thread count from the environment.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "gradcheck.hpp"
#include "temp_dir.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;

namespace {

template <class M>
std::vector<float> params_of(const M& m) {
    return {m.parameters(), m.parameters() + M::parameter_count};
}

template <std::size_t B, std::size_t T>
ctdl::tensor<int, shape<B, T>> ids(int vocab, int salt = 0) {
    ctdl::tensor<int, shape<B, T>> x;
    for (std::size_t i = 0; i < B * T; ++i)
        x.data()[i] = static_cast<int>((i * 7 + static_cast<std::size_t>(salt)) % static_cast<std::size_t>(vocab));
    return x;
}

}  // namespace

// ------------------------------------------------------------------ frozen residual blocks

template <class G>
using res_net = nn::sequential<nn::linear<6, 8>, G, nn::residual<nn::layer_norm<8>, nn::linear<8, 8>, G>, nn::linear<8, 2>>;

template <class G>
void check_frozen_residual_gelu() {
    ctdl::model<res_net<G>> net{ctdl::seed{4}};
    ctdl::model<ctdl::frozen<res_net<G>>> frozen{ctdl::seed{4}};
    ctdl::tensor<float, shape<5, 6>> x;
    ctdl_test::fill_uniform(x, 3);
    CHECK(ctdl::equal(net.forward(x), frozen.forward(x)));

    // The frozen part has nothing trainable upstream: only the head's gradients, checked
    // against finite differences in double.
    using tuned = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<6, 8>, G, nn::residual<nn::layer_norm<8>, nn::linear<8, 8>, G>>>,
                                 nn::linear<8, 2>>;
    static_assert(ctdl::model<tuned>::gradient_count == 8 * 2 + 2);
    ctdl::model<tuned, ctdl::cpu, double> head{ctdl::seed{4}};
    ctdl::tensor<double, shape<5, 6>> xd;
    ctdl_test::fill_uniform(xd, 3);
    const auto r = ctdl_test::gradcheck(head, xd);
    CHECK(r.checked == 18);
    CHECK(r.max_rel_error < 1e-6);
}

TEST_CASE("frozen models whose residual branch ends in linear + gelu compile and compute the same function") {
    check_frozen_residual_gelu<nn::gelu_tanh>();
    check_frozen_residual_gelu<nn::gelu_exact>();
    check_frozen_residual_gelu<nn::relu>();
}

TEST_CASE("nn::gelu is PyTorch's default GELU, the exact one") {
    STATIC_REQUIRE(std::is_same_v<nn::gelu, nn::gelu_exact>);
    CHECK(nn::gelu::f(1.0) == Approx(0.8413447460685429).epsilon(1e-12));  // x Φ(x) at 1
    CHECK(nn::gelu_tanh::f(1.0) != nn::gelu::f(1.0));
}

// A training forward keeps chain'(z) for the backward pass, computed with the chain's value
// (apply_with_derivative: the GELUs share their exp or erf); it must be bitwise what apply and
// derivative give one at a time, in a vectorized loop as in a scalar call.
template <class Chain, class T>
void check_value_with_derivative() {
    std::vector<T> x;
    for (int i = -400; i <= 400; ++i) x.push_back(T(i) / T(37));
    for (T v : {T(0), T(-0.0), T(1e-7), T(-1e-7), T(20), T(-20), T(90), T(-90), T(1e4), T(-1e4)}) x.push_back(v);
    std::vector<T> y(x.size()), d(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) y[i] = Chain::apply_with_derivative(x[i], d[i]);
    std::size_t value_mismatches = 0, derivative_mismatches = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        volatile T xi = x[i];  // a scalar call, not the loop above
        value_mismatches += y[i] != Chain::apply(T(xi));
        derivative_mismatches += d[i] != Chain::derivative(T(xi));
    }
    CHECK(value_mismatches == 0);
    CHECK(derivative_mismatches == 0);
    // And it is the derivative: a central difference in double.
    if constexpr (std::is_same_v<T, double>)
        for (double v : {-2.5, -0.7, 0.3, 1.9}) {
            double dv = 0;
            Chain::apply_with_derivative(v, dv);
            const double h = 1e-6, fd = (Chain::apply(v + h) - Chain::apply(v - h)) / (2 * h);
            CHECK(dv == Approx(fd).epsilon(1e-7));
        }
}

TEST_CASE("a chain's value with its derivative is apply and derivative bit for bit, in float and double") {
    check_value_with_derivative<nn::chain<nn::gelu_tanh>, float>();
    check_value_with_derivative<nn::chain<nn::gelu_tanh>, double>();
    check_value_with_derivative<nn::chain<nn::gelu_exact>, float>();
    check_value_with_derivative<nn::chain<nn::gelu_exact>, double>();
    check_value_with_derivative<nn::chain<nn::gelu_tanh, nn::tanh>, float>();
    check_value_with_derivative<nn::chain<nn::sigmoid, nn::gelu_exact>, double>();
}

// ------------------------------------------------------------------ connections from the types

struct encoder : nn::sequential<nn::linear<16, 64>, nn::relu, nn::residual<nn::layer_norm<64>, ctdl::frozen<nn::linear<64, 64>>>> {};

TEST_CASE("graphs state the features they take and give, through activations, residuals, frozen<> and named blocks") {
    STATIC_REQUIRE(encoder::in_features == 16);
    STATIC_REQUIRE(encoder::out_features == 64);
    STATIC_REQUIRE(!encoder::keeps_features);
    using acts = nn::sequential<nn::relu, nn::dropout<0.1>, nn::tanh>;
    STATIC_REQUIRE(acts::keeps_features);
    STATIC_REQUIRE(acts::in_features == 0);  // takes any width
    using later = nn::sequential<nn::relu, nn::linear<5, 3>>;
    STATIC_REQUIRE(later::in_features == 5);
    STATIC_REQUIRE(ctdl::frozen<encoder>::in_features == 16 && ctdl::frozen<encoder>::out_features == 64);
    using tokens = nn::sequential<nn::embedding<10, 8>, nn::position_embedding<4, 8>, nn::layer_norm<8>>;
    STATIC_REQUIRE(tokens::out_features == 8);
    STATIC_REQUIRE(tokens::connects);
    STATIC_REQUIRE(nn::sequential<encoder, nn::layer_norm<64>, nn::linear<64, 3>>::connects);
}

// ------------------------------------------------------------------ optimizers bound to their model

TEST_CASE("train_step refuses an optimizer made for another model object, and changes nothing") {
    using net_t = nn::sequential<nn::linear<4, 6>, nn::relu, nn::linear<6, 3>>;
    ctdl::model<net_t> a{ctdl::seed{1}}, b{ctdl::seed{2}};
    ctdl::optim::sgd opt{a, {.lr = 0.1f, .momentum = 0.9f}};
    ctdl::tensor<float, shape<5, 4>> x;
    ctdl_test::fill_uniform(x, 5);
    ctdl::tensor<int, shape<5>> y;
    for (int i = 0; i < 5; ++i) y(i) = i % 3;
    const auto a0 = params_of(a), b0 = params_of(b);
    try {
        ctdl::train_step(b, opt, ctdl::loss::cross_entropy, x, y);
        FAIL("train_step accepted an optimizer made for another model");
    } catch (const ctdl::error& e) {
        CHECK(std::string(e.what()).find("another model object") != std::string::npos);
    }
    CHECK(params_of(a) == a0);
    CHECK(params_of(b) == b0);
    CHECK(opt.step_count() == 0);
    // The right pairing trains.
    ctdl::train_step(a, opt, ctdl::loss::cross_entropy, x, y);
    CHECK(params_of(a) != a0);

    ctdl::optim::adamw adam{b, {.lr = 0.01f}};
    CHECK_THROWS_AS(ctdl::train_step(a, adam, ctdl::loss::cross_entropy, x, y), ctdl::error);
}

// ------------------------------------------------------------------ freezing without renaming

using mlp = nn::sequential<nn::linear<6, 8>, nn::relu, nn::linear<8, 8>, nn::tanh, nn::linear<8, 3>>;

template <class A, class B>
void check_same_names() {
    const auto& a = ctdl::model<A>::parameter_table();
    const auto& b = ctdl::model<B>::parameter_table();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].name == b[i].name);
        CHECK(a[i].shape == b[i].shape);
        CHECK(a[i].offset == b[i].offset);
    }
}

TEST_CASE("freeze_first and with_frozen freeze parts in place: same names, offsets and initial values") {
    using head = ctdl::freeze_first<2, mlp>;  // linear 0 (and its relu)
    STATIC_REQUIRE(ctdl::model<head>::gradient_count == 8 * 8 + 8 + 8 * 3 + 3);
    check_same_names<mlp, head>();
    using middle = ctdl::with_frozen<mlp, "2">;
    STATIC_REQUIRE(ctdl::model<middle>::gradient_count == ctdl::model<mlp>::gradient_count - 8 * 8 - 8);
    check_same_names<mlp, middle>();
    // the old way, re-nesting, renames: this is what the rewrite avoids
    using renested = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<6, 8>, nn::relu>>, nn::linear<8, 8>, nn::tanh, nn::linear<8, 3>>;
    CHECK(ctdl::model<renested>::parameter_table()[0].name == "0.0.weight");
    CHECK(ctdl::model<head>::parameter_table()[0].name == "0.weight");
    CHECK(!ctdl::model<head>::parameter_table()[0].trainable);

    ctdl::model<mlp> full{ctdl::seed{3}};
    ctdl::model<head> part{ctdl::seed{3}};
    CHECK(params_of(full) == params_of(part));
    ctdl::tensor<float, shape<4, 6>> x;
    ctdl_test::fill_uniform(x, 8);
    CHECK(ctdl::equal(full.forward(x), part.forward(x)));
}

TEST_CASE("a full models::gpt snapshot loads into the type with its embeddings and first blocks frozen, and "
          "training leaves those bitwise unchanged") {
    using gpt = ctdl::models::gpt<24, 8, 16, 2, 3>;
    using tuned = ctdl::models::gpt_with_frozen_bottom<gpt, 2>;
    using by_path = ctdl::with_frozen<gpt, "0", "1", "2.0", "2.1">;
    STATIC_REQUIRE(std::is_same_v<tuned, by_path>);
    check_same_names<gpt, tuned>();
    constexpr std::size_t block = ctdl::parameter_count<ctdl::models::gpt_block<16, 2, 64>>;
    STATIC_REQUIRE(ctdl::model<tuned>::gradient_count == ctdl::model<gpt>::gradient_count - 24 * 16 - 8 * 16 - 2 * block);

    ctdl_test::temp_dir dir;
    ctdl::model<gpt> pretrained{ctdl::seed{11}};
    const auto file = dir.path / "gpt.safetensors";
    ctdl::save(pretrained, file);
    ctdl::model<tuned> net{ctdl::seed{99}};
    ctdl::load_into(net, file);
    const auto before = params_of(net);
    CHECK(before == params_of(pretrained));

    ctdl::optim::adamw opt{net, {.lr = 1e-2f, .weight_decay = 0.1f}};
    const auto x = ids<2, 8>(24), y = ids<2, 8>(24, 1);
    ctdl::count_passes counting;
    for (int i = 0; i < 3; ++i) ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
    CHECK(counting.counts()[ctdl::pass::update] == 3);
    const auto after = params_of(net);
    for (const auto& p : ctdl::model<tuned>::parameter_table()) {
        const bool same = std::equal(before.begin() + p.offset, before.begin() + p.offset + p.size, after.begin() + p.offset);
        INFO(p.name);
        CHECK(same == !p.trainable);
    }
    // The optimizer keeps state for the trainable parameters only.
    for (const auto& s : opt.state_tensors()) CHECK(s.values.size() == ctdl::model<tuned>::gradient_count);
}

// ------------------------------------------------------------------ named access

TEST_CASE("parameters and their gradients by state_dict name, with their shapes") {
    using net_t = nn::sequential<ctdl::frozen<nn::linear<4, 6>>, nn::relu, nn::linear<6, 3>>;
    ctdl::model<net_t> net{ctdl::seed{5}};
    auto w = net.parameter("2.weight");
    CHECK(w.shape.size() == 2);
    CHECK(w.shape[0] == 3);
    CHECK(w.shape[1] == 6);
    CHECK(w.size() == 18);
    CHECK(w.values.data() == net.parameters() + 4 * 6 + 6);
    CHECK(w.trainable);
    auto t = w.as<shape<3, 6>>();
    CHECK(&t(1, 2) == &w[1 * 6 + 2]);
    CHECK_THROWS_AS((w.as<shape<6, 3>>()), ctdl::error);
    CHECK(!net.parameter("0.bias").trainable);

    ctdl::tensor<float, shape<2, 4>> x;
    ctdl_test::fill_uniform(x, 1);
    auto& acts = net.activations_for<shape<2, 4>>();
    net.forward(x, acts);
    ctdl::tensor<float, shape<2, 3>> dy(1.0f);
    net.backward(acts, x, dy);
    auto g = net.gradient("2.bias");
    CHECK(g.values.data() == net.gradients() + 18);
    CHECK(g[0] == Approx(2.0f));  // db = Σ_rows dy
    try {
        net.gradient("0.weight");
        FAIL("a frozen parameter has no gradient");
    } catch (const ctdl::error& e) {
        CHECK(std::string(e.what()).find("frozen") != std::string::npos);
    }
    try {
        net.parameter("3.weight");
        FAIL("no such parameter");
    } catch (const ctdl::error& e) {
        CHECK(std::string(e.what()).find("2.weight") != std::string::npos);  // lists what there is
    }
    const auto& cnet = net;
    CHECK(cnet.parameter("2.bias").values.data() == net.parameters() + 4 * 6 + 6 + 18);
}

TEST_CASE("CTDL_THREADS sets the default thread count, and a bad value is a ctdl::error naming it") {
    const char* old = std::getenv("CTDL_THREADS");
    const std::string saved = old ? old : "";
    ::setenv("CTDL_THREADS", "3", 1);
    CHECK(ctdl::thread_pool::default_threads() == 3);
    for (const char* bad : {"0", "-1", "two", "3x", " 2", "99999999999999999999", "2000"}) {
        ::setenv("CTDL_THREADS", bad, 1);
        INFO(bad);
        CHECK_THROWS_WITH(ctdl::thread_pool::default_threads(), Catch::Contains("CTDL_THREADS"));
    }
    if (old) ::setenv("CTDL_THREADS", saved.c_str(), 1);
    else ::unsetenv("CTDL_THREADS");
    CHECK(ctdl::thread_pool::default_threads() >= 1);
}
