// The device policy (Thrust's device system) computes what the cpu policy computes: the
// same model type, the same seed, on both. Built for Thrust's OMP and CPP systems here
// (test_device_omp, test_device_cpp), and for CUDA under nvcc.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/exec/device.hpp>
#include <ctdl/core/transfer.hpp>

#include <cmath>
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
    compare_policies<nn::sequential<nn::linear<8, 16>, nn::rms_norm<16>, nn::gelu_tanh, nn::linear<16, 300>,
                                    nn::rms_norm<300, std::ratio<1, 100000>>, nn::layer_norm<300>, nn::linear<300, 4>>,
                     shape<2, 3, 8>>();
}

TEST_CASE("device policy: conv1d, named parts, the attention core and gpt2, as on the cpu") {
    compare_policies<nn::sequential<nn::named<"c_attn", nn::conv1d<8, 24>>, nn::causal_attention<8, 2>,
                                    nn::named<"c_proj", nn::conv1d<8, 16>>, nn::gelu_tanh, nn::conv1d<16, 4>>,
                     shape<2, 5, 8>>();
    using G = ctdl::models::gpt2<13, 6, 8, 2, 2>;
    ctdl::model<G> host{ctdl::seed{5}};
    ctdl::model<G, ctdl::device> dev{ctdl::seed{5}};
    ctdl::tensor<int, shape<2, 6>> x;
    for (std::size_t i = 0; i < 12; ++i) x.data()[i] = static_cast<int>((i * 5 + 1) % 13);
    const auto xd = ctdl::to<ctdl::device>(x);
    auto& ah = host.activations_for<shape<2, 6>, int>();
    auto& ad = dev.activations_for<shape<2, 6>, int>();
    const auto& yh = host.forward(x, ah);
    const auto yd = ctdl::to<ctdl::cpu>(dev.forward(xd, ad));
    CHECK(close(std::vector<float>(yd.begin(), yd.end()), std::vector<float>(yh.begin(), yh.end())));
    ctdl::tensor<float, shape<2, 6, 13>> dy;
    ctdl_test::fill_uniform(dy, 4);
    auto dyd = ctdl::to<ctdl::device>(dy);
    host.backward(ah, x, dy);
    dev.backward(ad, xd, dyd);
    const std::vector<float> gh(host.gradients(), host.gradients() + host.gradient_count);
    CHECK(close(host_gradients(dev), gh));
}

namespace {
template <class T>
std::vector<T> on_host(const ctdl::device::buffer<T>& b) {
    std::vector<T> v(b.size());
    ctdl::device::copy_to_host(b.data(), v.data(), v.size());
    return v;
}
template <class T>
ctdl::device::buffer<T> on_device(const std::vector<T>& v) {
    ctdl::device::buffer<T> b(v.size());
    ctdl::device::copy_from_host(v.data(), b.data(), v.size());
    return b;
}
/// On Thrust's host systems the device runs the very same instructions as the cpu: the ops'
/// math is written once, in one summation order. Under CUDA, exp and fma contraction differ.
template <class T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
#if defined(__CUDACC__)
    return close(a, b);
#else
    return a == b;
#endif
}
}  // namespace

TEST_CASE("device policy: the normalising ops give the cpu's values (one math, one summation order)") {
    const std::size_t rows = 37, cols = 300;  // column tiles of 64 on the cpu, one column per task here
    std::vector<float> x(rows * cols), w(cols), b(cols), dy(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * float(i)) * 3 + 1, dy[i] = std::cos(0.11f * float(i));
    for (std::size_t c = 0; c < cols; ++c) w[c] = 1 + 0.01f * float(c % 7), b[c] = 0.1f * float(c % 5);
    const auto xd = on_device(x), wd = on_device(w), bd = on_device(b), dyd = on_device(dy);
    namespace ops = ctdl::ops;
    using ctdl::launch;
    {  // layer norm
        std::vector<float> y(x.size()), m(rows), r(rows), dx(x.size()), dw(cols), db(cols);
        ctdl::device::buffer<float> yd(x.size()), md(rows), rd(rows), dxd(x.size()), dwd(cols), dbd(cols);
        launch<ops::layer_norm_forward, ctdl::cpu>(rows, cols, x.data(), w.data(), b.data(), y.data(), m.data(), r.data(), 1e-5f);
        launch<ops::layer_norm_forward, ctdl::device>(rows, cols, xd.data(), wd.data(), bd.data(), yd.data(), md.data(),
                                                      rd.data(), 1e-5f);
        launch<ops::layer_norm_backward, ctdl::cpu>(rows, cols, x.data(), w.data(), m.data(), r.data(), dy.data(), dx.data(),
                                                    dw.data(), db.data(), false, ctdl::epilogue::none{});
        launch<ops::layer_norm_backward, ctdl::device>(rows, cols, xd.data(), wd.data(), md.data(), rd.data(), dyd.data(),
                                                       dxd.data(), dwd.data(), dbd.data(), false, ctdl::epilogue::none{});
        CHECK(same_values(on_host(yd), y));
        CHECK(same_values(on_host(dxd), dx));
        CHECK(same_values(on_host(dwd), dw));
        CHECK(same_values(on_host(dbd), db));
    }
    {  // rms norm
        std::vector<float> y(x.size()), r(rows), dx(x.size()), dw(cols);
        ctdl::device::buffer<float> yd(x.size()), rd(rows), dxd(x.size()), dwd(cols);
        launch<ops::rms_norm_forward, ctdl::cpu>(rows, cols, x.data(), w.data(), y.data(), r.data(), 1e-6f);
        launch<ops::rms_norm_forward, ctdl::device>(rows, cols, xd.data(), wd.data(), yd.data(), rd.data(), 1e-6f);
        launch<ops::rms_norm_backward, ctdl::cpu>(rows, cols, x.data(), w.data(), r.data(), dy.data(), dx.data(), dw.data(),
                                                  false, ctdl::epilogue::none{});
        launch<ops::rms_norm_backward, ctdl::device>(rows, cols, xd.data(), wd.data(), rd.data(), dyd.data(), dxd.data(),
                                                     dwd.data(), false, ctdl::epilogue::none{});
        CHECK(same_values(on_host(yd), y));
        CHECK(same_values(on_host(dxd), dx));
        CHECK(same_values(on_host(dwd), dw));
    }
    {  // softmax
        std::vector<float> y(x.size()), dx(x.size());
        ctdl::device::buffer<float> yd(x.size()), dxd(x.size());
        launch<ops::softmax_forward, ctdl::cpu>(rows, cols, x.data(), y.data());
        launch<ops::softmax_forward, ctdl::device>(rows, cols, xd.data(), yd.data());
        launch<ops::softmax_backward, ctdl::cpu>(rows, cols, y.data(), dy.data(), dx.data());
        launch<ops::softmax_backward, ctdl::device>(rows, cols, yd.data(), dyd.data(), dxd.data());
        CHECK(same_values(on_host(yd), y));
        CHECK(same_values(on_host(dxd), dx));
    }
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
