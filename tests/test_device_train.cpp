// Training on the device policy computes what it computes on the cpu policy: every loss
// (value and gradient), every optimizer step, gradient clipping, train_step on the contract's
// MLP, and snapshots that move between a device model and a cpu model. Built for Thrust's
// OMP and CPP systems here (test_device_train_omp, test_device_train_cpp), and for CUDA
// under nvcc. Each check prints the largest relative difference it measured.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/core/transfer.hpp>
#include <ctdl/exec/device.hpp>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "gradcheck.hpp"

// Host heap allocations are counted where the device system's memory is the host's (Thrust's
// OMP and CPP systems): there a device allocation is one too. (Under CUDA, device memory
// comes from cudaMalloc and is not seen here.)
#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_CUDA
#define CTDL_TEST_COUNTS_ALLOCATIONS 1
#include "count_allocations.hpp"
#endif

namespace nn = ctdl::nn;
using ctdl::shape;

namespace {

constexpr double tolerance = 1e-5;

/// max_i |a_i - b_i| / (|b_i| + max_j |b_j|): relative to the tensor's largest element, as
/// in test_device.
template <class A, class B>
double rel_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double scale = 0, worst = 0;
    for (std::size_t i = 0; i < b.size(); ++i) scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    if (scale == 0) scale = 1;
    for (std::size_t i = 0; i < b.size(); ++i) {
        const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
        worst = std::max(worst, d / (std::abs(static_cast<double>(b[i])) + scale));
    }
    return worst;
}

/// |a - b| / |b| for scalars (absolute when b is 0).
inline double rel_diff_scalar(double a, double b) { return std::abs(a - b) / (b == 0 ? 1 : std::abs(b)); }

void report(const std::string& what, double diff) {
    std::printf("agreement: %-58s max rel diff %.3g\n", what.c_str(), diff);
    INFO(what << ": " << diff);
    CHECK(diff <= tolerance);
}

template <class X>
std::vector<typename X::value_type> host_values(const X& x) {
    const auto h = ctdl::to<ctdl::cpu>(x);
    return std::vector<typename X::value_type>(h.begin(), h.end());
}

template <class Model>
std::vector<typename Model::value_type> host_parameters(const Model& m) {
    std::vector<typename Model::value_type> p(Model::parameter_count);
    Model::exec_type::copy_to_host(m.parameters(), p.data(), p.size());
    return p;
}

template <class Model>
std::vector<typename Model::value_type> host_gradients(const Model& m) {
    std::vector<typename Model::value_type> g(Model::gradient_count);
    Model::exec_type::copy_to_host(m.gradients(), g.data(), g.size());
    return g;
}

/// Runs `call(tensors...)` on cpu tensors and on their device copies; compares the values
/// and the gradient written into the last argument.
template <class Loss, class L, class... Rest>
void compare_loss(const std::string& what, const Loss& loss, const L& logits, const Rest&... rest) {
    using T = typename L::value_type;
    using D = ctdl::tensor<T, ctdl::shape_of<L>>;
    // loss only
    const double v_cpu = loss(logits, rest...);
    const double v_dev = loss(ctdl::to<ctdl::device>(logits), ctdl::to<ctdl::device>(rest)...);
    report(what + ": loss", rel_diff_scalar(v_dev, v_cpu));
    // loss and gradient
    D d_cpu(T(7));
    auto d_dev = ctdl::to<ctdl::device>(D(T(7)));
    const double f_cpu = loss.forward_backward(logits, rest..., d_cpu);
    const double f_dev =
        loss.forward_backward(ctdl::to<ctdl::device>(logits), ctdl::to<ctdl::device>(rest)..., d_dev);
    CHECK(f_cpu == v_cpu);
    report(what + ": forward_backward loss", rel_diff_scalar(f_dev, f_cpu));
    report(what + ": gradient", rel_diff(host_values(d_dev), std::vector<T>(d_cpu.begin(), d_cpu.end())));
}

/// The message of the ctdl::error that f throws ("" if none).
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const ctdl::error& e) {
        return e.what();
    }
    return "";
}

template <class T>
void check_losses() {
    const std::string type = std::is_same_v<T, float> ? "float" : "double";
    ctdl::tensor<T, shape<37, 11>> logits;
    ctdl_test::fill_uniform(logits, 1, -4, 4);
    ctdl::tensor<int, shape<37>> y;
    for (std::size_t r = 0; r < 37; ++r) y(r) = static_cast<int>((r * 7) % 11);
    compare_loss("cross_entropy " + type, ctdl::loss::cross_entropy, logits, y);

    ctdl::tensor<float, shape<37>> mask;
    for (std::size_t r = 0; r < 37; ++r) mask(r) = r % 3 == 0 ? 0.f : 0.25f * static_cast<float>(r % 5);
    compare_loss("cross_entropy " + type + ", mask", ctdl::loss::cross_entropy, logits, y, mask);

    auto padded = y;
    for (std::size_t r = 0; r < 37; r += 4) padded(r) = -100;
    const ctdl::loss::cross_entropy_t ignoring{.ignore_index = -100};
    compare_loss("cross_entropy " + type + ", ignore_index", ignoring, logits, padded);
    compare_loss("cross_entropy " + type + ", ignore_index and mask", ignoring, logits, padded, mask);

    ctdl::tensor<T, shape<3, 5, 7>> logits3;  // rank 3: rows [3, 5]
    ctdl_test::fill_uniform(logits3, 2, -3, 3);
    ctdl::tensor<long, shape<3, 5>> y3;
    for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 5; ++j) y3(i, j) = static_cast<long>((i + 2 * j) % 7);
    compare_loss("cross_entropy " + type + ", rank 3, long targets", ctdl::loss::cross_entropy, logits3, y3);

    ctdl::tensor<T, shape<6, 9>> p, t;
    ctdl_test::fill_uniform(p, 3);
    ctdl_test::fill_uniform(t, 4, 0, 1);
    compare_loss("mse " + type, ctdl::loss::mse, p, t);
    ctdl_test::fill_uniform(p, 5, -30, 30);  // large logits: the overflow-free form
    compare_loss("binary_cross_entropy_with_logits " + type, ctdl::loss::binary_cross_entropy_with_logits, p, t);
}

}  // namespace

// ---------------------------------------------------------------- losses

TEST_CASE("device training: every loss, value and gradient, as on the cpu") {
    check_losses<float>();
    check_losses<double>();
}

TEST_CASE("device training: cross_entropy refuses bad targets and masks with the cpu's message") {
    ctdl::tensor<float, shape<2, 4, 5>> logits;
    ctdl_test::fill_uniform(logits, 6);
    ctdl::tensor<int, shape<2, 4>> y(1);
    y(1, 2) = 5;  // out of [0, 5)
    y(1, 3) = -1;
    ctdl::tensor<float, shape<2, 4, 5>> d;
    auto dd = ctdl::to<ctdl::device>(d);
    const auto logits_d = ctdl::to<ctdl::device>(logits);

    const std::string cpu = error_of([&] { ctdl::loss::cross_entropy.forward_backward(logits, y, d); });
    const std::string dev =
        error_of([&] { ctdl::loss::cross_entropy.forward_backward(logits_d, ctdl::to<ctdl::device>(y), dd); });
    CHECK(cpu.find("target 5 at row 6 (index [1, 2]") != std::string::npos);
    CHECK(dev == cpu);
    CHECK(error_of([&] { ctdl::loss::cross_entropy(logits_d, ctdl::to<ctdl::device>(y)); }) == cpu);

    // -100 is an error unless it is ignore_index; then the next bad row is named.
    y(1, 2) = -100;
    const ctdl::loss::cross_entropy_t ignoring{.ignore_index = -100};
    const std::string cpu2 = error_of([&] { ignoring(logits, y); });
    CHECK(cpu2.find("target -1 at row 7") != std::string::npos);
    CHECK(error_of([&] { ignoring(logits_d, ctdl::to<ctdl::device>(y)); }) == cpu2);
    y(1, 3) = 0;
    CHECK(error_of([&] { ignoring(logits_d, ctdl::to<ctdl::device>(y)); }).empty());
    CHECK_FALSE(error_of([&] { ctdl::loss::cross_entropy(logits_d, ctdl::to<ctdl::device>(y)); }).empty());

    // A negative or non-finite mask value.
    ctdl::tensor<float, shape<2, 4>> mask(1.f);
    mask(0, 1) = std::numeric_limits<float>::infinity();
    const std::string cpu3 = error_of([&] { ignoring(logits, y, mask); });
    CHECK(cpu3.find("mask value inf at row 1") != std::string::npos);
    CHECK(error_of([&] { ignoring(logits_d, ctdl::to<ctdl::device>(y), ctdl::to<ctdl::device>(mask)); }) == cpu3);
    mask(0, 1) = -0.5f;
    CHECK(error_of([&] { ignoring(logits_d, ctdl::to<ctdl::device>(y), ctdl::to<ctdl::device>(mask)); }) ==
          error_of([&] { ignoring(logits, y, mask); }));

    // Every row ignored: loss 0 and gradient 0, as on the cpu.
    ctdl::tensor<int, shape<2, 4>> all_ignored(-100);
    CHECK(ignoring.forward_backward(logits_d, ctdl::to<ctdl::device>(all_ignored), dd) == 0.f);
    const auto dh = ctdl::to<ctdl::cpu>(dd);
    CHECK(std::all_of(dh.begin(), dh.end(), [](float v) { return v == 0.f; }));
}

#if THRUST_DEVICE_SYSTEM != THRUST_DEVICE_SYSTEM_CUDA
// On a host device system the two policies run the same op kernels with the same math, and
// ctdl::cpu::sum adds in ctdl::device::sum's order (256 chunks fixed by n), so every loss is
// bitwise the cpu's, on a shape where the cpu sums on its pool.
TEST_CASE("device training: on a host device system every loss is bitwise the cpu's") {
    constexpr std::size_t rows = 300, classes = 70;
    STATIC_REQUIRE(rows * classes >= ctdl::cpu::parallel_work);
    ctdl::tensor<float, shape<rows, classes>> x, t, d;
    ctdl::tensor<int, shape<rows>> y;
    ctdl::tensor<float, shape<rows>> mask;
    ctdl_test::fill_uniform(x, 21, -4, 4);
    ctdl_test::fill_uniform(t, 22, 0, 1);
    ctdl_test::fill_uniform(mask, 23, 0, 2);
    for (std::size_t i = 0; i < rows; ++i) y(i) = static_cast<int>((i * 13) % classes);
    const auto xd = ctdl::to<ctdl::device>(x), td = ctdl::to<ctdl::device>(t);
    const auto yd = ctdl::to<ctdl::device>(y);
    const auto md = ctdl::to<ctdl::device>(mask);
    auto dd = ctdl::to<ctdl::device>(d);
    auto same = [&](float host, float dev) {
        CHECK(std::bit_cast<std::uint32_t>(host) == std::bit_cast<std::uint32_t>(dev));
        const auto dh = ctdl::to<ctdl::cpu>(dd);
        CHECK(std::equal(d.begin(), d.end(), dh.begin()));
    };
    same(ctdl::loss::cross_entropy.forward_backward(x, y, d), ctdl::loss::cross_entropy.forward_backward(xd, yd, dd));
    CHECK(ctdl::loss::cross_entropy(x, y, mask) == ctdl::loss::cross_entropy(xd, yd, md));
    same(ctdl::loss::mse.forward_backward(x, t, d), ctdl::loss::mse.forward_backward(xd, td, dd));
    same(ctdl::loss::binary_cross_entropy_with_logits.forward_backward(x, t, d),
         ctdl::loss::binary_cross_entropy_with_logits.forward_backward(xd, td, dd));
}
#endif

// ---------------------------------------------------------------- optimizers

namespace {

// Three trainable segments around a frozen layer: a gap in the parameter buffer.
using small_net = nn::sequential<nn::linear<8, 16>, nn::relu, ctdl::frozen<nn::linear<16, 16>>, nn::tanh,
                                 nn::linear<16, 4>>;

/// Sets the same pseudo-random gradients (stream k) on both models.
template <class H, class D>
void set_gradients(H& host, D& dev, std::uint64_t k) {
    ctdl::tensor<float, shape<H::gradient_count>> g;
    ctdl_test::fill_uniform(g, 100 + k);
    std::copy(g.begin(), g.end(), host.gradients());
    ctdl::device::copy_from_host(g.data(), dev.gradients(), g.size);
}

template <template <class> class Optimizer, class Options>
void compare_optimizer(const std::string& what, const Options& options, float grad_scale = 1.f) {
    ctdl::model<small_net> host{ctdl::seed{3}};
    ctdl::model<small_net, ctdl::device> dev{ctdl::seed{3}};
    Optimizer<decltype(host)> oh{host, options};
    Optimizer<decltype(dev)> od{dev, options};
    for (std::uint64_t k = 0; k < 5; ++k) {
        set_gradients(host, dev, k);
        if (grad_scale == 1.f) {
            oh.step();
            od.step();
        } else {
            oh.step(grad_scale);
            od.step(grad_scale);
        }
    }
    CHECK(od.step_count() == 5);
    const std::vector<float> ph(host.parameters(), host.parameters() + host.parameter_count);
    report(what + ": parameters after 5 steps", rel_diff(host_parameters(dev), ph));
    // frozen parameters untouched
    const auto pd = host_parameters(dev);
    ctdl::model<small_net> fresh{ctdl::seed{3}};
    for (const auto& info : decltype(host)::parameter_table())
        if (!info.trainable)
            CHECK(std::equal(pd.begin() + info.offset, pd.begin() + info.offset + info.size,
                             fresh.parameters() + info.offset));
    // state, by name, through the host copies
    const auto sh = ctdl::optim::state_to_host(oh);
    const auto sd = ctdl::optim::state_to_host(od);
    REQUIRE(sh.size() == sd.size());
    for (std::size_t i = 0; i < sh.size(); ++i) {
        CHECK(sh[i].first == sd[i].first);
        report(what + ": state " + sh[i].first, rel_diff(sd[i].second, sh[i].second));
    }
}

}  // namespace

TEST_CASE("device training: sgd, adam and adamw steps, as on the cpu") {
    using ctdl::optim::adam;
    using ctdl::optim::adamw;
    using ctdl::optim::sgd;
    compare_optimizer<sgd>("sgd", ctdl::optim::sgd_options<float>{.lr = 0.1f});
    compare_optimizer<sgd>("sgd momentum, dampening, decay",
                           ctdl::optim::sgd_options<float>{
                               .lr = 0.05f, .momentum = 0.9f, .dampening = 0.1f, .weight_decay = 0.01f});
    compare_optimizer<sgd>("sgd nesterov, grad_scale 0.5",
                           ctdl::optim::sgd_options<float>{.lr = 0.05f, .momentum = 0.8f, .nesterov = true}, 0.5f);
    compare_optimizer<adam>("adam", ctdl::optim::adam_options<float>{.lr = 1e-2f});
    compare_optimizer<adam>("adam L2 decay", ctdl::optim::adam_options<float>{.lr = 1e-2f, .weight_decay = 0.1f});
    compare_optimizer<adamw>("adamw, grad_scale 0.5", ctdl::optim::adamw_options<float>{.lr = 1e-2f}, 0.5f);
}

TEST_CASE("device training: optimizer state moves in and out of a device optimizer") {
    ctdl::model<small_net, ctdl::device> dev{ctdl::seed{3}};
    ctdl::optim::adamw opt{dev};
    const auto state = opt.state_tensors();
    REQUIRE(state.size() == 2);
    CHECK(state[0].name == "exp_avg");
    CHECK(state[0].values.size() == dev.gradient_count);
    std::vector<float> v(dev.gradient_count);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = 0.5f * static_cast<float>(i);
    ctdl::optim::state_from_host(opt, "exp_avg_sq", v);
    const auto back = ctdl::optim::state_to_host(opt);
    CHECK(back[1].first == "exp_avg_sq");
    CHECK(back[1].second == v);
    CHECK(std::all_of(back[0].second.begin(), back[0].second.end(), [](float x) { return x == 0.f; }));
    CHECK_THROWS_AS(ctdl::optim::state_from_host(opt, "momentum_buffer", v), ctdl::error);
    CHECK_THROWS_AS(ctdl::optim::state_from_host(opt, "exp_avg", std::span<const float>(v).first(3)), ctdl::error);
}

TEST_CASE("device training: grad_norm and clip_grad_norm, as on the cpu") {
    ctdl::model<small_net> host{ctdl::seed{3}};
    ctdl::model<small_net, ctdl::device> dev{ctdl::seed{3}};
    set_gradients(host, dev, 9);
    report("grad_norm", rel_diff_scalar(ctdl::optim::grad_norm(dev), ctdl::optim::grad_norm(host)));
    const double nh = ctdl::optim::clip_grad_norm(host, 0.5);
    const double nd = ctdl::optim::clip_grad_norm(dev, 0.5);
    report("clip_grad_norm: returned norm", rel_diff_scalar(nd, nh));
    const std::vector<float> gh(host.gradients(), host.gradients() + host.gradient_count);
    report("clip_grad_norm: clipped gradients", rel_diff(host_gradients(dev), gh));
    report("clip_grad_norm: norm after clipping", rel_diff_scalar(ctdl::optim::grad_norm(dev), 0.5));
    // no clipping needed: the gradients stay as they are
    const auto before = host_gradients(dev);
    ctdl::optim::clip_grad_norm(dev, 100.0);
    CHECK(host_gradients(dev) == before);
}

// ---------------------------------------------------------------- train_step

namespace {

using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

/// The contract's data: the label is the index of the largest of the first ten features.
void contract_batch(ctdl::tensor<float, shape<64, 784>>& x, ctdl::tensor<int, shape<64>>& y) {
    unsigned state = 12345;
    auto uniform = [&] {
        state = state * 1664525u + 1013904223u;
        return static_cast<float>(state >> 8) / 16777216.0f;
    };
    for (int i = 0; i < 64; ++i) {
        int best = 0;
        for (int j = 0; j < 784; ++j) {
            x(i, j) = uniform();
            if (j < 10 && x(i, j) > x(i, best)) best = j;
        }
        y(i) = best;
    }
}

/// The contract's batch on the host and its copies on the device (members are made in
/// order: x and y are filled before they are copied).
struct contract_data {
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl::tensor<int, shape<64>> y;
    bool filled = (contract_batch(x, y), true);
    ctdl::tensor<float, shape<64, 784>, ctdl::device> xd = ctdl::to<ctdl::device>(x);
    ctdl::tensor<int, shape<64>, ctdl::device> yd = ctdl::to<ctdl::device>(y);
};

}  // namespace

TEST_CASE("device training: 20 train_steps of the contract's MLP with sgd, as on the cpu") {
    const contract_data data;
    const auto& x = data.x;
    const auto& y = data.y;
    const auto& xd = data.xd;
    const auto& yd = data.yd;

    ctdl::model<mlp> host{ctdl::seed{7}};
    ctdl::model<mlp, ctdl::device> dev{ctdl::seed{7}};
    ctdl::optim::sgd oh{host, {.lr = 0.05f}};
    ctdl::optim::sgd od{dev, {.lr = 0.05f}};
    double worst_loss = 0;
    float first = 0, last = 0;
    for (int step = 0; step < 20; ++step) {
        const float lh = ctdl::train_step(host, oh, ctdl::loss::cross_entropy, x, y);
        const float ld = ctdl::train_step(dev, od, ctdl::loss::cross_entropy, xd, yd);
        REQUIRE(std::isfinite(ld));
        worst_loss = std::max(worst_loss, rel_diff_scalar(ld, lh));
        if (step == 0) first = ld;
        last = ld;
    }
    std::printf("device train_step: loss %.4f -> %.4f over 20 steps\n", first, last);
    CHECK(last < first);
    report("train_step x20 sgd: losses", worst_loss);
    const std::vector<float> ph(host.parameters(), host.parameters() + host.parameter_count);
    report("train_step x20 sgd: final weights", rel_diff(host_parameters(dev), ph));
}

#if defined(CTDL_TEST_COUNTS_ALLOCATIONS)
TEST_CASE("device training: after warm-up, a train_step allocates nothing (sgd and adamw, cross_entropy)") {
    const contract_data data;
    const auto& xd = data.xd;
    const auto& yd = data.yd;
    ctdl::model<mlp, ctdl::device> dev{ctdl::seed{7}};
    ctdl::optim::sgd sgd{dev, {.lr = 0.05f, .momentum = 0.9f}};
    ctdl::optim::adamw adamw{dev, {.lr = 1e-3f}};
    for (int step = 0; step < 2; ++step) {
        ctdl::train_step(dev, sgd, ctdl::loss::cross_entropy, xd, yd);
        ctdl::train_step(dev, adamw, ctdl::loss::cross_entropy, xd, yd);
    }
    const std::size_t before = test_allocations.load();
    float loss = 0;
    for (int step = 0; step < 5; ++step) {
        loss += ctdl::train_step(dev, sgd, ctdl::loss::cross_entropy, xd, yd);
        loss += ctdl::train_step(dev, adamw, ctdl::loss::cross_entropy, xd, yd);
    }
    CHECK(test_allocations.load() == before);
    CHECK(std::isfinite(loss));
    const auto fresh = ctdl::to<ctdl::device>(data.x);  // and the counter sees a device allocation
    CHECK(test_allocations.load() > before);
}
#endif

TEST_CASE("device training: train_step with adamw, clipping, mse and a mask, as on the cpu") {
    using net_t = nn::sequential<nn::linear<12, 32>, nn::gelu_tanh, nn::layer_norm<32>, nn::linear<32, 6>>;
    ctdl::tensor<float, shape<16, 12>> x;
    ctdl::tensor<float, shape<16, 6>> t;
    ctdl_test::fill_uniform(x, 20);
    ctdl_test::fill_uniform(t, 21);
    const auto xd = ctdl::to<ctdl::device>(x);
    const auto td = ctdl::to<ctdl::device>(t);

    ctdl::model<net_t> host{ctdl::seed{11}};
    ctdl::model<net_t, ctdl::device> dev{ctdl::seed{11}};
    ctdl::optim::adamw oh{host, {.lr = 1e-2f}};
    ctdl::optim::adamw od{dev, {.lr = 1e-2f}};
    double worst = 0;
    for (int step = 0; step < 10; ++step) {
        // by hand: forward, loss, backward, clip, step
        auto& ah = host.activations_for<shape<16, 12>>();
        auto& ad = dev.activations_for<shape<16, 12>>();
        const float lh = ctdl::loss::mse.forward_backward(host.forward(x, ah), t, ah.dout);
        const float ld = ctdl::loss::mse.forward_backward(dev.forward(xd, ad), td, ad.dout);
        host.backward(ah, x, ah.dout);
        dev.backward(ad, xd, ad.dout);
        ctdl::optim::clip_grad_norm(host, 0.1);
        ctdl::optim::clip_grad_norm(dev, 0.1);
        oh.step();
        od.step();
        worst = std::max(worst, rel_diff_scalar(ld, lh));
    }
    report("adamw + clip + mse x10: losses", worst);
    const std::vector<float> ph(host.parameters(), host.parameters() + host.parameter_count);
    report("adamw + clip + mse x10: final weights", rel_diff(host_parameters(dev), ph));

    // train_step counts the same passes on both policies.
    ctdl::count_passes counting;
    ctdl::train_step(host, oh, ctdl::loss::mse, x, t);
    const auto on_cpu = counting.counts();
    counting.reset();
    ctdl::train_step(dev, od, ctdl::loss::mse, xd, td);
    CHECK(counting.counts().n == on_cpu.n);
}

// ---------------------------------------------------------------- snapshots

TEST_CASE("device training: a snapshot from a device model loads into a cpu model, and back") {
    const contract_data data;
    const auto& x = data.x;
    const auto& y = data.y;
    const auto& xd = data.xd;
    const auto& yd = data.yd;
    const auto dir = std::filesystem::temp_directory_path();
    const auto from_dev = dir / "ctdl_test_device_train_dev.safetensors";
    const auto from_cpu = dir / "ctdl_test_device_train_cpu.safetensors";

    // device -> cpu
    ctdl::model<mlp, ctdl::device> dev{ctdl::seed{21}};
    ctdl::optim::sgd od{dev, {.lr = 0.05f, .momentum = 0.9f}};
    for (int step = 0; step < 3; ++step) ctdl::train_step(dev, od, ctdl::loss::cross_entropy, xd, yd);
    ctdl::save(dev, from_dev);
    auto host = ctdl::load<ctdl::model<mlp>>(from_dev);
    CHECK(host_parameters(dev) == std::vector<float>(host.parameters(), host.parameters() + host.parameter_count));
    const auto yh = host.forward(x);
    report("snapshot device -> cpu: outputs",
           rel_diff(host_values(dev.forward(xd)), std::vector<float>(yh.begin(), yh.end())));
    auto frozen_host = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>(from_dev);
    CHECK(ctdl::equal(frozen_host.forward(x), yh));

    // cpu -> device
    ctdl::optim::sgd oh{host, {.lr = 0.05f}};
    for (int step = 0; step < 3; ++step) ctdl::train_step(host, oh, ctdl::loss::cross_entropy, x, y);
    ctdl::save(host, from_cpu);
    auto dev2 = ctdl::load<ctdl::model<mlp, ctdl::device>>(from_cpu);
    CHECK(host_parameters(dev2) == std::vector<float>(host.parameters(), host.parameters() + host.parameter_count));
    const auto yh2 = host.forward(x);
    report("snapshot cpu -> device: outputs",
           rel_diff(host_values(dev2.forward(xd)), std::vector<float>(yh2.begin(), yh2.end())));
    auto frozen_dev = ctdl::load<ctdl::model<ctdl::frozen<mlp>, ctdl::device>>(from_cpu);
    CHECK(ctdl::equal(ctdl::to<ctdl::cpu>(frozen_dev.forward(xd)), ctdl::to<ctdl::cpu>(dev2.forward(xd))));

    std::filesystem::remove(from_dev);
    std::filesystem::remove(from_cpu);
}

// ---------------------------------------------------------------- train::run with a loss mask

TEST_CASE("device training: train::run on an sft_dataset (the masked loss), as on the cpu") {
    using lm = nn::sequential<nn::embedding<16, 16>, nn::layer_norm<16>, nn::linear<16, 16>>;
    const ctdl::data::char_tokenizer tok("0123456789+=#");
    std::string lines;
    for (int a = 0; a < 10; ++a)
        for (int b = 0; b < 4; ++b)
            lines += "{\"prompt\": \"" + std::to_string(a) + "+" + std::to_string(b) + "=\", \"response\": \"" +
                     std::to_string(a + b) + "\"}\n";
    const ctdl::data::sft_dataset ds(ctdl::data::parse_prompt_responses(lines), tok,
                                     {.context = 8, .validation_fraction = 0.2,
                                      .layout = ctdl::data::sft_layout::packed, .end_token = *tok.find('#')});
    ctdl::train::options o;
    o.steps = 8;
    o.peak_lr = 1e-2;
    o.warmup_steps = 2;
    o.eval_every = 4;
    o.grad_accumulation = 2;
    o.progress = false;
    ctdl::model<lm> host{ctdl::seed{5}};
    ctdl::model<lm, ctdl::device> dev{ctdl::seed{5}};
    ctdl::optim::adamw oh{host, {}};
    ctdl::optim::adamw od{dev, {}};
    ctdl::rng gh{ctdl::seed{1}}, gd{ctdl::seed{1}};
    const auto rh = ctdl::train::run<4, 8>(host, oh, ds, gh, o);
    const auto rd = ctdl::train::run<4, 8>(dev, od, ds, gd, o);
    CHECK(gh.state() == gd.state());
    REQUIRE(rd.train_curve.size() == rh.train_curve.size());
    REQUIRE(rd.validation_curve.size() == 2);
    double worst = 0;
    for (std::size_t i = 0; i < rh.train_curve.size(); ++i)
        worst = std::max(worst, rel_diff_scalar(rd.train_curve[i].loss, rh.train_curve[i].loss));
    for (std::size_t i = 0; i < rh.validation_curve.size(); ++i)
        worst = std::max(worst, rel_diff_scalar(rd.validation_curve[i].loss, rh.validation_curve[i].loss));
    report("train::run x8 on an sft_dataset: losses", worst);
    const std::vector<float> ph(host.parameters(), host.parameters() + host.parameter_count);
    report("train::run x8 on an sft_dataset: final weights", rel_diff(host_parameters(dev), ph));
    CHECK(rd.train_curve.back().loss < rd.train_curve.front().loss);
}
