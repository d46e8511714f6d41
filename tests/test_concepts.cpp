// The concepts of core/concepts.hpp and ctdl::accepts<L, S>: which types are layers,
// policies and optimizers, and which shapes each layer kind takes -- every refusal asked
// here without an error, in one ordinary translation unit (tests/compile_fail/ checks the
// sentences the same refusals give when the shape is actually used).
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#if CTDL_TEST_DEVICE_POLICY
#include <ctdl/exec/device.hpp>
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nn = ctdl::nn;
using ctdl::shape;

namespace {

// ------------------------------------------------------------------ non-examples

/// Everything a layer has but visit_parameters.
struct no_visit_parameters {
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
    template <ctdl::shape_like S>
    using output_shape = S;
    template <class T, class Seed>
    static void initialize(T*, Seed, std::size_t) {}
};
/// Everything a layer has, but its output_shape is not a template.
struct plain_output_shape {
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
    using output_shape = shape<1>;
    template <class V>
    static constexpr void visit_parameters(V&, std::size_t) {}
    template <class T, class Seed>
    static void initialize(T*, Seed, std::size_t) {}
};
/// The weak nn::layer of before: the two counts alone.
struct counts_only {
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
};
/// A user's layer with everything, and a shape check as a requires-clause (no accepts).
struct user_layer {
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
    template <ctdl::shape_like S>
        requires(S::rank == 2)
    using output_shape = S;
    template <class V>
    static constexpr void visit_parameters(V&, std::size_t) {}
    template <class T, class Seed>
    static void initialize(T*, Seed, std::size_t) {}
};

/// The cpu policy, less one member each (a derived name hides the base's).
struct cpu_without_gemm : ctdl::cpu {
    static void gemm() = delete;
};
struct cpu_without_sum_cols : ctdl::cpu {
    static void sum_cols() = delete;
};
/// Its buffer is a bare pointer: no buffer(n), no data().
struct cpu_with_pointer_buffer : ctdl::cpu {
    template <class T>
    using buffer = T*;
};
/// A user's policy: the cpu under another name.
struct my_cpu : ctdl::cpu {};

/// A user's optimizer with the whole interface, and the same without set_step_count.
template <class Model>
struct user_optimizer {
    using model_type = Model;
    static constexpr bool usable = true;
    using T = typename Model::value_type;
    void step() {}
    void step(T) {}
    T lr() const { return T(0); }
    void set_lr(T) {}
    std::uint64_t step_count() const { return 0; }
    void set_step_count(std::uint64_t) {}
    std::vector<int> state_tensors() { return {}; }
    Model& model() const { return *m; }
    Model* m;
};
template <class Model>
struct optimizer_without_set_step_count {
    using model_type = Model;
    static constexpr bool usable = true;
    using T = typename Model::value_type;
    void step() {}
    void step(T) {}
    T lr() const { return T(0); }
    void set_lr(T) {}
    std::uint64_t step_count() const { return 0; }
    std::vector<int> state_tensors() { return {}; }
    Model& model() const { return *m; }
    Model* m;
};

// ------------------------------------------------------------------ nodes

/// A user's layer with a whole node: y = 2x (no parameters), its backward dx = 2 dy.
struct doubling : nn::parameter_free {
    template <class Ctx>
    struct node : ctdl::graph::node_base<Ctx> {
        using base = ctdl::graph::node_base<Ctx>;
        using typename base::T, typename base::Exec, typename base::in_shape;
        using base::need_dx;
        using out_shape = in_shape;
        void forward(const T*, const T* in, T* out, bool) {
            Exec::for_each_index(in_shape::size, [=] CTDL_HD (std::size_t i) { out[i] = 2 * in[i]; });
        }
        ctdl::epilogue::none dout_transform(const T*, const T*) const { return {}; }
        template <class Ep>
        void backward(const ctdl::graph::backward_io<T, Ep>& io) {
            if constexpr (need_dx)
                Exec::map_rows(base::rows, base::cols, io.din, [] CTDL_HD (T g) { return 2 * g; }, io.din_ep, io.dout);
        }
    };
};
/// The same node less one member each, or with forward's arguments in another order.
template <int Broken>
struct broken_layer : nn::parameter_free {
    template <class Ctx>
    struct node : ctdl::graph::node_base<Ctx> {
        using T = typename Ctx::value_type;
        using out_shape = std::conditional_t<Broken == 4, shape<1>, typename Ctx::in_shape>;
        node() requires(Broken != 3) = default;
        explicit node(int) {}
        void forward(const T*, const T*, T*, bool) requires(Broken != 0) {}
        void forward(const T*, T*, const T*, bool) requires(Broken == 0) {}
        ctdl::epilogue::none dout_transform(const T*, const T*) const requires(Broken != 1) { return {}; }
        template <class Ep>
        void backward(const ctdl::graph::backward_io<T, Ep>&) requires(Broken != 2) {}
    };
};
template <class In, bool Frozen = false, bool NeedDx = true, class Input = float>
using ctx = ctdl::graph::context<In, float, ctdl::cpu, 0, 0, Frozen, NeedDx, Input>;
template <class L, class Ctx>
constexpr bool node_in = ctdl::node<typename L::template node<Ctx>, Ctx>;

// ------------------------------------------------------------------ architectures

using mlp = nn::sequential<nn::linear<4, 8>, nn::relu, nn::linear<8, 2>>;
using net_model = ctdl::model<mlp>;
/// Nested: a residual with a frozen part inside a sequential.
using nested = nn::sequential<nn::linear<4, 8>, nn::gelu,
                              nn::residual<nn::layer_norm<8>, ctdl::frozen<nn::linear<8, 8>>, nn::tanh>,
                              nn::linear<8, 2>>;
/// A named block, as users write them.
struct block : nn::sequential<nn::layer_norm<8>, nn::residual<nn::rms_norm<8>, nn::linear<8, 8>>> {};
/// The shape is refused only at the second part: linear<4, 8> takes [4] and gives [8], which
/// attention (wanting [..., T, 8]) refuses.
using late_refusal = nn::sequential<nn::linear<4, 8>, nn::causal_self_attention<8, 2>>;
using gpt = ctdl::models::gpt<64, 16, 32, 2, 2>;

/// A constraint on a layer's shape, resolved by overload (no error for a refusing layer).
template <class L>
    requires ctdl::accepts<L, shape<2, 8>>
constexpr int takes_2_by_8() {
    return 1;
}
template <class L>
constexpr int takes_2_by_8() {
    return 0;
}
/// The same with the concept in the template head: accepts<S> L means accepts<L, S>.
template <ctdl::accepts<shape<3, 4>> L>
constexpr bool constrained_on_3_by_4() {
    return true;
}
template <class L>
constexpr bool constrained_on_3_by_4() {
    return false;
}

}  // namespace

// ------------------------------------------------------------------ layer

TEST_CASE("layer: every layer kind, graph and model architecture is one") {
    STATIC_REQUIRE(ctdl::layer<nn::linear<4, 2>>);
    STATIC_REQUIRE(ctdl::layer<nn::linear<4, 2, false>>);
    STATIC_REQUIRE(ctdl::layer<nn::relu>);
    STATIC_REQUIRE(ctdl::layer<nn::gelu_tanh>);
    STATIC_REQUIRE(ctdl::layer<nn::softmax>);
    STATIC_REQUIRE(ctdl::layer<nn::dropout<0.1>>);
    STATIC_REQUIRE(ctdl::layer<nn::layer_norm<8>>);
    STATIC_REQUIRE(ctdl::layer<nn::rms_norm<8>>);
    STATIC_REQUIRE(ctdl::layer<nn::causal_self_attention<8, 2>>);
    STATIC_REQUIRE(ctdl::layer<nn::embedding<64, 8>>);
    STATIC_REQUIRE(ctdl::layer<nn::position_embedding<16, 8>>);
    STATIC_REQUIRE(ctdl::layer<nn::residual<nn::linear<8, 8>>>);
    STATIC_REQUIRE(ctdl::layer<ctdl::frozen<mlp>>);
    STATIC_REQUIRE(ctdl::layer<mlp>);
    STATIC_REQUIRE(ctdl::layer<nested>);
    STATIC_REQUIRE(ctdl::layer<block>);
    STATIC_REQUIRE(ctdl::layer<nn::repeat<2, block>>);
    STATIC_REQUIRE(ctdl::layer<gpt>);
    STATIC_REQUIRE(ctdl::layer<user_layer>);
    // nn::layer is the same concept, by its old name.
    STATIC_REQUIRE(nn::layer<nn::linear<4, 2>>);
    STATIC_REQUIRE(nn::layer<nested>);
}

TEST_CASE("layer: types without a descriptor's members are not layers") {
    STATIC_REQUIRE(!ctdl::layer<int>);
    STATIC_REQUIRE(!ctdl::layer<void>);
    STATIC_REQUIRE(!ctdl::layer<shape<2, 3>>);
    STATIC_REQUIRE(!ctdl::layer<net_model>);
    STATIC_REQUIRE(!ctdl::layer<no_visit_parameters>);
    STATIC_REQUIRE(!ctdl::layer<plain_output_shape>);
    STATIC_REQUIRE(!ctdl::layer<counts_only>);
    STATIC_REQUIRE(!nn::layer<counts_only>);
}

// ------------------------------------------------------------------ node

TEST_CASE("node: every layer's node, trained, frozen and reading token ids, is one") {
    using rows = shape<4, 8>;
    STATIC_REQUIRE(node_in<nn::linear<8, 2>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::linear<8, 2>, ctx<rows, true, false>>);
    STATIC_REQUIRE(ctdl::node<nn::chain_node<nn::chain<nn::relu, nn::tanh>, ctx<rows>>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::softmax, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::dropout<0.1>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::layer_norm<8>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::rms_norm<8>, ctx<rows, true>>);
    STATIC_REQUIRE(node_in<nn::causal_self_attention<8, 2>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::embedding<64, 8>, ctx<shape<4>, false, false, int>>);
    STATIC_REQUIRE(node_in<nn::position_embedding<16, 8>, ctx<rows>>);
    STATIC_REQUIRE(node_in<nn::residual<nn::linear<8, 8>>, ctx<rows>>);
    STATIC_REQUIRE(node_in<ctdl::frozen<nested>, ctx<shape<4, 4>>>);
    STATIC_REQUIRE(node_in<nested, ctx<shape<4, 4>>>);
    STATIC_REQUIRE(node_in<block, ctx<rows>>);
    STATIC_REQUIRE(node_in<gpt, ctx<shape<2, 16>, false, false, int>>);
    STATIC_REQUIRE(node_in<doubling, ctx<rows>>);
    // graph::node_of makes the layer's own node when it is one.
    STATIC_REQUIRE(std::same_as<ctdl::graph::node_of<nn::softmax, ctx<rows>>, nn::softmax::node<ctx<rows>>>);
    STATIC_REQUIRE(!std::same_as<ctdl::graph::node_of<nn::softmax, ctx<rows>>, ctdl::graph::detail::inert_node<nn::softmax, ctx<rows>>>);
}

TEST_CASE("node: a node without forward, dout_transform, backward or a default constructor is not one") {
    using rows = shape<4, 8>;
    STATIC_REQUIRE(node_in<broken_layer<-1>, ctx<rows>>);  // nothing broken: the control
    STATIC_REQUIRE(!node_in<broken_layer<0>, ctx<rows>>);
    STATIC_REQUIRE(!node_in<broken_layer<1>, ctx<rows>>);
    STATIC_REQUIRE(!node_in<broken_layer<2>, ctx<rows>>);
    STATIC_REQUIRE(!node_in<broken_layer<3>, ctx<rows>>);
    // A node whose out_shape is not its layer's output_shape: a node, but not that layer's.
    STATIC_REQUIRE(node_in<broken_layer<4>, ctx<rows>>);
    STATIC_REQUIRE(!ctdl::graph::detail::is_node_of<broken_layer<4>::node<ctx<rows>>, broken_layer<4>, ctx<rows>>());
}

TEST_CASE("node: a user's layer with its own node trains inside a model") {
    // net: W2 (2 h) + b2 with the user's doubling node; plain: (2 W2) h + b2, the same function.
    using net_type = nn::sequential<nn::linear<3, 4>, doubling, nn::linear<4, 2>>;
    using plain_type = nn::sequential<nn::linear<3, 4>, nn::linear<4, 2>>;
    ctdl::model<net_type> net{ctdl::seed{5}};
    ctdl::model<plain_type> plain{ctdl::seed{5}};
    REQUIRE(net.parameter_count == plain.parameter_count);
    for (const char* name : {"0.weight", "0.bias"}) {
        auto a = net.parameter(name);
        auto b = plain.parameter(name);
        for (std::size_t i = 0; i < a.size(); ++i) b[i] = a[i];
    }
    auto w2 = net.parameter("2.weight");
    auto w1 = plain.parameter("1.weight");
    for (std::size_t i = 0; i < w2.size(); ++i) w1[i] = 2 * w2[i];
    auto b2 = net.parameter("2.bias");
    auto b1 = plain.parameter("1.bias");
    for (std::size_t i = 0; i < b2.size(); ++i) b1[i] = b2[i];

    ctdl::tensor<float, shape<2, 3>> x;
    for (std::size_t i = 0; i < x.size; ++i) x.data()[i] = 0.25f * float(i) - 0.5f;
    auto y = net.forward(x);
    auto p = plain.forward(x);
    for (std::size_t i = 0; i < y.size; ++i) REQUIRE(y.data()[i] == Approx(p.data()[i]).margin(1e-6));

    ctdl::optim::sgd opt_net{net, {.lr = 0.0f}};
    ctdl::optim::sgd opt_plain{plain, {.lr = 0.0f}};
    ctdl::tensor<float, shape<2, 2>> target;
    target(0, 0) = 1.0f;
    target(1, 1) = -1.0f;
    const float loss_net = ctdl::train_step(net, opt_net, ctdl::loss::mse, x, target);
    const float loss_plain = ctdl::train_step(plain, opt_plain, ctdl::loss::mse, x, target);
    REQUIRE(loss_net == Approx(loss_plain));
    // dL/dh through the doubling node's backward equals (2 W2)ᵀ dy: the first layer's
    // gradients agree, and the last layer's is twice plain's (its input is 2h).
    auto gn = net.gradient("0.weight");
    auto gp = plain.gradient("0.weight");
    double norm = 0;
    for (std::size_t i = 0; i < gn.size(); ++i) {
        REQUIRE(gn[i] == Approx(gp[i]).margin(1e-6));
        norm += std::abs(gp[i]);
    }
    REQUIRE(norm > 1e-3);
    auto gn2 = net.gradient("2.weight");
    auto gp2 = plain.gradient("1.weight");
    for (std::size_t i = 0; i < gn2.size(); ++i) REQUIRE(gn2[i] == Approx(2 * gp2[i]).margin(1e-6));
}

// ------------------------------------------------------------------ execution_policy

TEST_CASE("execution_policy: cpu and policies built on it") {
    STATIC_REQUIRE(ctdl::execution_policy<ctdl::cpu>);
    STATIC_REQUIRE(ctdl::execution_policy<my_cpu>);
}

#if CTDL_TEST_DEVICE_POLICY
TEST_CASE("execution_policy: device") {
    STATIC_REQUIRE(ctdl::execution_policy<ctdl::device>);
}
#endif

TEST_CASE("execution_policy: a policy missing a member is not one") {
    STATIC_REQUIRE(!ctdl::execution_policy<int>);
    STATIC_REQUIRE(!ctdl::execution_policy<mlp>);
    STATIC_REQUIRE(!ctdl::execution_policy<cpu_without_gemm>);
    STATIC_REQUIRE(!ctdl::execution_policy<cpu_without_sum_cols>);
    STATIC_REQUIRE(!ctdl::execution_policy<cpu_with_pointer_buffer>);
}

// ------------------------------------------------------------------ optimizer

TEST_CASE("optimizer: sgd, adam, adamw and a user's optimizer") {
    STATIC_REQUIRE(ctdl::optimizer<ctdl::optim::sgd<net_model>>);
    STATIC_REQUIRE(ctdl::optimizer<ctdl::optim::adam<net_model>>);
    STATIC_REQUIRE(ctdl::optimizer<ctdl::optim::adamw<net_model>>);
    STATIC_REQUIRE(ctdl::optimizer<ctdl::optim::adamw<ctdl::model<mlp, ctdl::cpu, double>>>);
    STATIC_REQUIRE(ctdl::optimizer<user_optimizer<net_model>>);
}

TEST_CASE("optimizer: types without the interface are not optimizers") {
    STATIC_REQUIRE(!ctdl::optimizer<int>);
    STATIC_REQUIRE(!ctdl::optimizer<net_model>);
    STATIC_REQUIRE(!ctdl::optimizer<optimizer_without_set_step_count<net_model>>);
}

// ------------------------------------------------------------------ accepts: each layer kind

TEST_CASE("accepts: linear takes [..., In]") {
    STATIC_REQUIRE(ctdl::accepts<nn::linear<128, 10>, shape<64, 128>>);
    STATIC_REQUIRE(ctdl::accepts<nn::linear<128, 10>, shape<128>>);
    STATIC_REQUIRE(ctdl::accepts<nn::linear<128, 10, false>, shape<2, 3, 128>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::linear<128, 10>, shape<64, 256>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::linear<128, 10>, shape<128, 64>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::linear<128, 10>, shape<>>);
    // ctdl::accepts agrees with the layer's own predicate, and with what output_shape gives.
    STATIC_REQUIRE(nn::linear<128, 10>::accepts<shape<64, 128>>);
    STATIC_REQUIRE(std::same_as<ctdl::output_shape<nn::linear<128, 10>, shape<64, 128>>, shape<64, 10>>);
}

TEST_CASE("accepts: layer_norm and rms_norm take [..., N]") {
    STATIC_REQUIRE(ctdl::accepts<nn::layer_norm<16>, shape<4, 16>>);
    STATIC_REQUIRE(ctdl::accepts<nn::layer_norm<16>, shape<16>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::layer_norm<16>, shape<4, 8>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::layer_norm<16>, shape<16, 4>>);
    STATIC_REQUIRE(ctdl::accepts<nn::rms_norm<16>, shape<4, 16>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::rms_norm<16>, shape<4, 8>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::rms_norm<16, std::ratio<1, 100000>>, shape<>>);
}

TEST_CASE("accepts: attention takes [..., T, D]") {
    using attn = nn::causal_self_attention<32, 4>;
    STATIC_REQUIRE(ctdl::accepts<attn, shape<2, 8, 32>>);
    STATIC_REQUIRE(ctdl::accepts<attn, shape<8, 32>>);
    STATIC_REQUIRE(!ctdl::accepts<attn, shape<32>>);
    STATIC_REQUIRE(!ctdl::accepts<attn, shape<2, 8, 16>>);
}

TEST_CASE("accepts: embeddings") {
    STATIC_REQUIRE(ctdl::accepts<nn::embedding<64, 8>, shape<2, 16>>);
    STATIC_REQUIRE(ctdl::accepts<nn::embedding<64, 8>, shape<5>>);
    using pos = nn::position_embedding<16, 8>;
    STATIC_REQUIRE(ctdl::accepts<pos, shape<2, 16, 8>>);
    STATIC_REQUIRE(ctdl::accepts<pos, shape<3, 8>>);
    STATIC_REQUIRE(!ctdl::accepts<pos, shape<2, 17, 8>>);  // longer than MaxT
    STATIC_REQUIRE(!ctdl::accepts<pos, shape<2, 16, 4>>);  // not [..., T, D]
    STATIC_REQUIRE(!ctdl::accepts<pos, shape<8>>);
}

TEST_CASE("accepts: pointwise and parameter-free layers take any shape") {
    STATIC_REQUIRE(ctdl::accepts<nn::relu, shape<3, 5>>);
    STATIC_REQUIRE(ctdl::accepts<nn::tanh, shape<7>>);
    STATIC_REQUIRE(ctdl::accepts<nn::sigmoid, shape<1, 2, 3>>);
    STATIC_REQUIRE(ctdl::accepts<nn::gelu, shape<4, 4>>);
    STATIC_REQUIRE(ctdl::accepts<nn::softmax, shape<2, 9>>);
    STATIC_REQUIRE(ctdl::accepts<nn::dropout<0.5>, shape<6>>);
}

TEST_CASE("accepts: not a shape, or not a layer, is refused") {
    STATIC_REQUIRE(!ctdl::accepts<nn::relu, int>);
    STATIC_REQUIRE(!ctdl::accepts<nn::linear<4, 2>, float>);
    STATIC_REQUIRE(!ctdl::accepts<int, shape<4>>);
    STATIC_REQUIRE(!ctdl::accepts<counts_only, shape<4>>);
}

TEST_CASE("accepts: a user's layer without a predicate is asked through its output_shape") {
    STATIC_REQUIRE(ctdl::accepts<user_layer, shape<2, 3>>);
    STATIC_REQUIRE(!ctdl::accepts<user_layer, shape<2, 3, 4>>);
}

// ------------------------------------------------------------------ accepts: graphs

TEST_CASE("accepts: residual takes what its branch takes and gives back") {
    STATIC_REQUIRE(ctdl::accepts<nn::residual<nn::layer_norm<8>, nn::linear<8, 8>>, shape<2, 8>>);
    STATIC_REQUIRE(ctdl::accepts<nn::residual<nn::linear<8, 8>>, shape<8>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::residual<nn::linear<8, 4>>, shape<2, 8>>);  // changes the shape
    STATIC_REQUIRE(!ctdl::accepts<nn::residual<nn::linear<8, 8>>, shape<2, 4>>);  // the branch refuses
    STATIC_REQUIRE(!ctdl::accepts<nn::residual<nn::layer_norm<8>, nn::linear<8, 8>>, shape<2, 4>>);
}

TEST_CASE("accepts: frozen<A> takes what A takes") {
    STATIC_REQUIRE(ctdl::accepts<ctdl::frozen<nn::linear<4, 2>>, shape<3, 4>>);
    STATIC_REQUIRE(!ctdl::accepts<ctdl::frozen<nn::linear<4, 2>>, shape<3, 5>>);
    STATIC_REQUIRE(ctdl::accepts<ctdl::frozen<mlp>, shape<3, 4>>);
    STATIC_REQUIRE(!ctdl::accepts<ctdl::frozen<mlp>, shape<3, 8>>);
    STATIC_REQUIRE(ctdl::accepts<ctdl::frozen<ctdl::frozen<nn::layer_norm<4>>>, shape<4>>);
    STATIC_REQUIRE(!ctdl::accepts<ctdl::frozen<ctdl::frozen<nn::layer_norm<4>>>, shape<5>>);
}

TEST_CASE("accepts: sequential follows the shape through its parts") {
    STATIC_REQUIRE(ctdl::accepts<mlp, shape<3, 4>>);
    STATIC_REQUIRE(!ctdl::accepts<mlp, shape<3, 5>>);
    STATIC_REQUIRE(ctdl::accepts<nested, shape<5, 4>>);
    STATIC_REQUIRE(!ctdl::accepts<nested, shape<5, 8>>);
    STATIC_REQUIRE(ctdl::accepts<block, shape<2, 3, 8>>);
    STATIC_REQUIRE(!ctdl::accepts<block, shape<2, 3, 4>>);
    STATIC_REQUIRE(ctdl::accepts<nn::repeat<3, block>, shape<2, 8>>);
    STATIC_REQUIRE(!ctdl::accepts<nn::repeat<3, block>, shape<2, 9>>);
    // Refused after the first part: [4] -> linear -> [8], which attention refuses.
    STATIC_REQUIRE(ctdl::accepts<late_refusal, shape<3, 4>>);
    STATIC_REQUIRE(!ctdl::accepts<late_refusal, shape<4>>);
    STATIC_REQUIRE(ctdl::accepts<nn::sequential<nn::relu, nn::softmax>, shape<9>>);
}

TEST_CASE("accepts: a GPT takes token ids [B, T] with T up to its context") {
    STATIC_REQUIRE(ctdl::accepts<gpt, shape<2, 16>>);
    STATIC_REQUIRE(ctdl::accepts<gpt, shape<1, 3>>);
    STATIC_REQUIRE(!ctdl::accepts<gpt, shape<2, 17>>);
    STATIC_REQUIRE(std::same_as<ctdl::output_shape<gpt, shape<2, 16>>, shape<2, 16, 64>>);
}

TEST_CASE("accepts: usable in constraints, where a refusal picks another overload") {
    STATIC_REQUIRE(takes_2_by_8<nn::linear<8, 3>>() == 1);
    STATIC_REQUIRE(takes_2_by_8<nn::linear<4, 3>>() == 0);
    STATIC_REQUIRE(takes_2_by_8<nested>() == 0);
    STATIC_REQUIRE(takes_2_by_8<block>() == 1);
    STATIC_REQUIRE(constrained_on_3_by_4<mlp>());
    STATIC_REQUIRE(!constrained_on_3_by_4<nn::layer_norm<3>>());
    // The same asked in a requires-expression.
    STATIC_REQUIRE(requires { requires ctdl::accepts<mlp, shape<1, 4>>; });
    STATIC_REQUIRE(!requires { requires ctdl::accepts<mlp, shape<1, 2>>; });
    CHECK(takes_2_by_8<nn::linear<8, 3>>() + takes_2_by_8<nn::linear<4, 3>>() == 1);
}

TEST_CASE("accepts: matches the model, which forwards the shapes a layer accepts") {
    static_assert(ctdl::accepts<mlp, shape<5, 4>>);
    ctdl::model<mlp> net{ctdl::seed{3}};
    ctdl::tensor<float, shape<5, 4>> x;
    for (std::size_t i = 0; i < 20; ++i) x.data()[i] = static_cast<float>(i) / 20.0f;
    auto y = net.forward(x);
    STATIC_REQUIRE(std::same_as<ctdl::shape_of<decltype(y)>, shape<5, 2>>);
    CHECK(y.size == 10);
    for (std::size_t i = 0; i < y.size; ++i) CHECK(std::isfinite(y.data()[i]));
}
