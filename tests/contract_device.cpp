// The public surface of shared/api/contract.cpp, run on the device policy: the same program
// with ctdl::model<mlp, ctdl::device>. Inputs are built on the host and moved with
// ctdl::to<ctdl::device>; outputs come back with ctdl::to<ctdl::cpu> to be compared.
// Built for Thrust's OMP system here (and for CUDA under nvcc); exits 0 when it holds.
#include <ctdl/ctdl.hpp>
#include <ctdl/core/transfer.hpp>
#include <ctdl/exec/device.hpp>

#include <cmath>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

namespace nn = ctdl::nn;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            std::fprintf(stderr, "contract broken: %s (line %d)\n", #cond,   \
                         __LINE__);                                          \
            std::exit(1);                                                    \
        }                                                                    \
    } while (0)

using mlp = nn::sequential<nn::linear<784, 256>, nn::relu,
                           nn::linear<256, 256>, nn::relu,
                           nn::linear<256, 10>>;
using device_net = ctdl::model<mlp, ctdl::device>;
using frozen_device_net = ctdl::model<ctdl::frozen<mlp>, ctdl::device>;

static_assert(ctdl::trainable<device_net>);
static_assert(!ctdl::trainable<frozen_device_net>);
static_assert(device_net::gradient_count == ctdl::parameter_count<mlp>);
static_assert(frozen_device_net::gradient_count == 0);

int main() {
    device_net net{ctdl::seed{7}};
    ctdl::optim::sgd opt{net, {.lr = 0.05f}};

    // A learnable task: the label is the index of the largest of the first ten features.
    ctdl::tensor<float, ctdl::shape<64, 784>> x_host;
    ctdl::tensor<int, ctdl::shape<64>> y_host;
    unsigned state = 12345;
    auto uniform = [&] {
        state = state * 1664525u + 1013904223u;
        return static_cast<float>(state >> 8) / 16777216.0f;
    };
    for (int i = 0; i < 64; ++i) {
        int best = 0;
        for (int j = 0; j < 784; ++j) {
            x_host(i, j) = uniform();
            if (j < 10 && x_host(i, j) > x_host(i, best)) best = j;
        }
        y_host(i) = best;
    }
    const auto x = ctdl::to<ctdl::device>(x_host);
    const auto y = ctdl::to<ctdl::device>(y_host);
    static_assert(std::same_as<std::remove_cvref_t<decltype(x)>,
                               ctdl::tensor<float, ctdl::shape<64, 784>, ctdl::device>>);

    float first = 0.f, last = 0.f;
    for (int step = 0; step < 300; ++step) {
        const float loss = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
        CHECK(std::isfinite(loss));
        if (step == 0) first = loss;
        last = loss;
    }
    std::printf("loss %.4f -> %.4f\n", first, last);
    CHECK(last < 0.5f * first);

    // A snapshot from device memory, loaded into a frozen device model.
    ctdl::save(net, "contract_device.safetensors");
    auto frozen_net = ctdl::load<frozen_device_net>("contract_device.safetensors");

    const auto a = ctdl::to<ctdl::cpu>(net.forward(x));
    const auto b_device = frozen_net.forward(x);
    static_assert(std::same_as<std::remove_cvref_t<decltype(b_device)>,
                               ctdl::tensor<float, ctdl::shape<64, 10>, ctdl::device>>);
    const auto b = ctdl::to<ctdl::cpu>(b_device);
    for (int i = 0; i < 64; ++i)
        for (int j = 0; j < 10; ++j) CHECK(a(i, j) == b(i, j));

    // The same snapshot loads into a cpu model and computes the same function.
    auto host_net = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>("contract_device.safetensors");
    const auto h = host_net.forward(x_host);
    for (int i = 0; i < 64; ++i)
        for (int j = 0; j < 10; ++j) CHECK(std::abs(h(i, j) - b(i, j)) <= 1e-5f * (1.f + std::abs(b(i, j))));

    // freeze() turns the trained model into the inference type without a copy.
    frozen_device_net moved = ctdl::freeze(std::move(net));
    const auto c = ctdl::to<ctdl::cpu>(moved.forward(x));
    for (int i = 0; i < 64; ++i)
        for (int j = 0; j < 10; ++j) CHECK(c(i, j) == b(i, j));

    std::puts("contract holds on the device policy");
    return 0;
}
