// The device policy (Thrust's device system) computes what the cpu policy computes: the
// same model type, the same seed, on both. Built for Thrust's OMP and CPP systems here
// (test_device_omp, test_device_cpp), and for CUDA under nvcc.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/exec/device.hpp>
#include <ctdl/core/transfer.hpp>

#include <vector>

#include "gradcheck.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;

namespace {

template <class Model>
std::vector<typename Model::value_type> host_gradients(const Model& m) {
    std::vector<typename Model::value_type> g(Model::gradient_count);
    Model::exec_type::copy_to_host(m.gradients(), g.data(), g.size());
    return g;
}

/// |a - b| <= 1e-5 (|b| + scale): relative to the tensor's largest element.
template <class A, class B>
bool close(const A& a, const B& b, double tol = 1e-5) {
    double scale = 0;
    for (std::size_t i = 0; i < b.size(); ++i) scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    for (std::size_t i = 0; i < b.size(); ++i)
        if (!(std::abs(static_cast<double>(a[i]) - b[i]) <= tol * (std::abs(static_cast<double>(b[i])) + scale)))
            return false;
    return true;
}

template <class Arch, class In>
void compare_policies() {
    using Out = ctdl::output_shape<Arch, In>;
    ctdl::model<Arch> host{ctdl::seed{5}};
    ctdl::model<Arch, ctdl::device> dev{ctdl::seed{5}};
    std::vector<float> p(host.parameter_count);
    ctdl::device::copy_to_host(dev.parameters(), p.data(), p.size());
    REQUIRE(std::equal(p.begin(), p.end(), host.parameters()));  // the same initial weights

    ctdl::tensor<float, In> x;
    ctdl_test::fill_uniform(x, 3);
    const auto xd = ctdl::to<ctdl::device>(x);
    const auto y_host = host.forward(x);
    const auto y_dev = ctdl::to<ctdl::cpu>(dev.forward(xd));
    CHECK(close(std::vector<float>(y_dev.begin(), y_dev.end()), std::vector<float>(y_host.begin(), y_host.end())));

    ctdl::tensor<float, Out> dy;
    ctdl_test::fill_uniform(dy, 4);
    auto dyd = ctdl::to<ctdl::device>(dy);
    auto& ah = host.template activations_for<In>();
    auto& ad = dev.template activations_for<In>();
    host.forward(x, ah);
    dev.forward(xd, ad);
    host.backward(ah, x, dy);
    dev.backward(ad, xd, dyd);
    const std::vector<float> gh(host.gradients(), host.gradients() + host.gradient_count);
    CHECK(close(host_gradients(dev), gh));
}

}  // namespace

TEST_CASE("device policy: the contract's MLP, forward and backward, as on the cpu") {
    compare_policies<nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu,
                                    nn::linear<256, 10>>,
                     shape<64, 784>>();
}

TEST_CASE("device policy: every layer, as on the cpu") {
    compare_policies<nn::sequential<nn::linear<8, 16>, nn::layer_norm<16>, nn::gelu_exact, nn::linear<16, 16>,
                                    nn::gelu_tanh, nn::residual<nn::linear<16, 16>, nn::tanh>, nn::linear<16, 12>,
                                    nn::sigmoid, nn::linear<12, 10>, nn::softmax, nn::linear<10, 4>>,
                     shape<6, 8>>();
    compare_policies<nn::sequential<nn::linear<8, 16>, nn::relu, ctdl::frozen<nn::linear<16, 16>>, nn::tanh,
                                    nn::repeat<2, nn::sequential<nn::linear<16, 16>, nn::sigmoid>>, nn::linear<16, 3>>,
                     shape<2, 3, 8>>();
}

TEST_CASE("device policy: fusion and pruning give the same pass counts as on the cpu") {
    using tune_head = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<784, 256>, nn::relu>>, nn::linear<256, 10>>;
    ctdl::model<tune_head, ctdl::device> net{ctdl::seed{7}};
    ctdl::tensor<float, shape<64, 784>> x;
    const auto xd = ctdl::to<ctdl::device>(x);
    auto& acts = net.activations_for<shape<64, 784>>();
    ctdl::count_passes counting;
    net.forward(xd, acts);
    CHECK(counting.counts()[ctdl::pass::gemm] == 2);
    CHECK(counting.counts().total() == 2);
    counting.reset();
    auto dy = ctdl::to<ctdl::device>(ctdl::tensor<float, shape<64, 10>>(0.5f));
    net.backward(acts, xd, dy);
    CHECK(counting.counts()[ctdl::pass::gemm] == 1);
    CHECK(counting.counts()[ctdl::pass::reduce] == 1);
    CHECK(counting.counts().total() == 2);
}

TEST_CASE("to<Exec>: copies between policies both ways") {
    ctdl::tensor<float, shape<3, 5>> a;
    for (std::size_t i = 0; i < a.size; ++i) a.data()[i] = static_cast<float>(i) * 0.5f;
    const auto d = ctdl::to<ctdl::device>(a);
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(d)>, ctdl::tensor<float, shape<3, 5>, ctdl::device>>);
    const auto back = ctdl::to<ctdl::cpu>(d);
    CHECK(ctdl::equal(a, back));
    const auto d2 = ctdl::to<ctdl::device>(d);
    CHECK(ctdl::equal(a, ctdl::to<ctdl::cpu>(d2)));
}
