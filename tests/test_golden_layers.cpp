// Every layer against PyTorch on committed golden data (tests/golden/make_layers_golden.py):
// forward output, MSE loss, every trainable parameter's gradient, and the gradient at the
// model's input, for three architectures (all activations + layer norm + softmax; residual
// blocks and repeat; a partially frozen model on a rank-3 input).
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "golden_files.hpp"


namespace nn = ctdl::nn;
using ctdl::shape;

namespace {

using ctdl_test::golden;
using ctdl_test::read_floats;
using ctdl_test::relative_error;
using ctdl_test::gradient_offset;

template <class Tensor>
void read_into(const ctdl::safetensors::file& f, const std::string& name, Tensor& t) {
    const auto v = read_floats(f, name);
    REQUIRE(v.size() == t.size);
    std::copy(v.begin(), v.end(), t.data());
}

constexpr double output_tolerance = 1e-5;
constexpr double gradient_tolerance = 1e-5;  // the brief allows 1e-4; every case measures below 1e-6

/// Loads layers_<name>.safetensors into model<Arch>, runs forward, MSE and backward, and
/// compares with PyTorch; then runs Arch's node with a gradient at the input (need_dx),
/// which model::backward never asks for, and compares dL/dx and the gradients again.
template <class Arch, class In>
void check_against_torch(const char* file) {
    using Model = ctdl::model<Arch>;
    const auto f = ctdl::safetensors::read(golden(file));
    Model net;
    ctdl::load_into(net, f, {.prefix = "param.", .allow_unexpected = true});

    using Out = ctdl::output_shape<Arch, In>;
    ctdl::tensor<float, In> x;
    ctdl::tensor<float, Out> target;
    read_into(f, "x", x);
    read_into(f, "target", target);
    const auto expect_out = read_floats(f, "out");
    const float expect_loss = read_floats(f, "loss")[0];
    REQUIRE(expect_out.size() == Out::size);

    double worst = 0;
    const auto note = [&](const std::string& what, double err, double tol) {
        INFO(file << ": " << what << " relative error " << err);
        CHECK(err < tol);
        worst = std::max(worst, err);
        std::printf("  %-32s %-18s %.3g\n", file, what.c_str(), err);
    };

    // The public API: forward, loss, backward.
    auto& acts = net.template activations_for<In>();
    const auto& y = net.forward(x, acts);
    note("out", relative_error(y.data(), expect_out), output_tolerance);
    const float loss = ctdl::loss::mse.forward_backward(y, target, acts.dout);
    note("loss", std::abs(static_cast<double>(loss) - expect_loss) / expect_loss, output_tolerance);
    net.backward(acts, x, acts.dout);

    std::size_t trainable = 0;
    for (const auto& p : Model::parameter_table()) {
        const bool has_grad = f.find("grad." + p.name) != nullptr;
        INFO(p.name);
        CHECK(has_grad == p.trainable);  // PyTorch's requires_grad matches ctdl's frozen<>
        if (!p.trainable) continue;
        trainable += p.size;
        note("grad." + p.name, relative_error(net.gradients() + gradient_offset<Model>(p), read_floats(f, "grad." + p.name)),
             gradient_tolerance);
    }
    CHECK(trainable == Model::gradient_count);

    // dL/dx: Arch's node in a context that needs the gradient at its input, driven as
    // model::backward drives its root (the last layer's derivative applied to dy first).
    using ctx = ctdl::graph::context<In, float, ctdl::cpu, 0, 0, false, true>;
    using node_type = typename Arch::template node<ctx>;
    auto node = std::make_unique<node_type>();
    ctdl::tensor<float, Out> out2, dy;
    ctdl::tensor<float, In> dx;
    std::vector<float> grads(Model::gradient_count);
    node->forward(net.parameters(), x.data(), out2.data(), true);
    note("out (node)", relative_error(out2.data(), expect_out), output_tolerance);
    ctdl::loss::mse.forward_backward(out2, target, dy);
    auto transform = node->dout_transform(x.data(), out2.data());
    if constexpr (!std::same_as<decltype(transform), ctdl::epilogue::none>)
        ctdl::cpu::map_rows(ctdl::leading_size<Out>, ctdl::last_extent<Out>, dy.data(), [](float v) { return v; },
                            transform, dy.data());
    node->backward(ctdl::graph::backward_io<float>{net.parameters(), grads.data(), x.data(), out2.data(), dy.data(),
                                                   dx.data(), {}, false});
    note("dx", relative_error(dx.data(), read_floats(f, "dx")), gradient_tolerance);
    // the same parameter gradients as the model's backward, bit for bit
    CHECK(std::equal(grads.begin(), grads.end(), net.gradients()));

    std::printf("  %-32s worst relative error %.3g\n", file, worst);
}

}  // namespace

TEST_CASE("golden layers: every activation, layer norm and softmax match PyTorch (out, loss, dW, dx)") {
    using arch = nn::sequential<nn::linear<8, 16>, nn::layer_norm<16>, nn::gelu_exact, nn::linear<16, 16>, nn::gelu_tanh,
                                nn::linear<16, 12>, nn::tanh, nn::linear<12, 10>, nn::sigmoid, nn::linear<10, 4>,
                                nn::softmax>;
    check_against_torch<arch, shape<6, 8>>("layers_activations.safetensors");
}

TEST_CASE("golden layers: residual blocks and repeat match PyTorch (out, loss, dW, dx)") {
    using arch = nn::sequential<nn::linear<8, 16>, nn::residual<nn::linear<16, 16>, nn::relu>,
                                nn::residual<nn::layer_norm<16>, nn::linear<16, 16>, nn::tanh>,
                                nn::repeat<2, nn::sequential<nn::linear<16, 16>, nn::sigmoid>>, nn::linear<16, 3, false>>;
    check_against_torch<arch, shape<6, 8>>("layers_residual.safetensors");
}

TEST_CASE("golden layers: a partially frozen model on a rank-3 input matches PyTorch (out, loss, dW, dx)") {
    using arch = nn::sequential<nn::linear<8, 16>, nn::relu, ctdl::frozen<nn::linear<16, 16>>, nn::tanh, nn::linear<16, 3>>;
    static_assert(ctdl::model<arch>::gradient_count == ctdl::model<arch>::parameter_count - (16 * 16 + 16));
    check_against_torch<arch, shape<2, 3, 8>>("layers_frozen.safetensors");
}

TEST_CASE("golden layers: rms_norm matches torch.nn.RMSNorm (out, loss, dW, dx)") {
    using arch = nn::sequential<nn::linear<8, 16>, nn::rms_norm<16>, nn::gelu_tanh, nn::linear<16, 16>,
                                nn::rms_norm<16, std::ratio<1, 100000>>, nn::linear<16, 4>>;
    check_against_torch<arch, shape<2, 3, 8>>("layers_rms_norm.safetensors");
}
