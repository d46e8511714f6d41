// Training: allocation-free steps after warm-up, reproducibility, frozen parts untouched.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include "count_allocations.hpp"
#include "gradcheck.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;
using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

namespace {
struct task {
    ctdl::tensor<float, shape<64, 784>> x;
    ctdl::tensor<int, shape<64>> y;
    task() {
        ctdl_test::fill_uniform(x, 21, 0.0, 1.0);
        for (std::size_t i = 0; i < 64; ++i) {
            std::size_t best = 0;
            for (std::size_t j = 1; j < 10; ++j)
                if (x(i, j) > x(i, best)) best = j;
            y(i) = static_cast<int>(best);
        }
    }
};
}  // namespace

TEST_CASE("after warm-up, a training step performs no heap allocation") {
    const task t;
    ctdl::model<mlp> net{ctdl::seed{7}};
    ctdl::optim::sgd sgd{net, {.lr = 0.05f, .momentum = 0.9f}};
    ctdl::optim::adamw adamw{net, {.lr = 1e-3f}};
    for (int i = 0; i < 2; ++i) {
        ctdl::train_step(net, sgd, ctdl::loss::cross_entropy, t.x, t.y);
        ctdl::train_step(net, adamw, ctdl::loss::cross_entropy, t.x, t.y);
    }
    const std::size_t before = test_allocations.load();
    for (int i = 0; i < 10; ++i) {
        ctdl::train_step(net, sgd, ctdl::loss::cross_entropy, t.x, t.y);
        ctdl::train_step(net, adamw, ctdl::loss::cross_entropy, t.x, t.y);
    }
    CHECK(test_allocations.load() == before);
    // and the counter works: a forward into a new tensor allocates
    const auto y = net.forward(t.x);
    CHECK(test_allocations.load() > before);
    CHECK(std::isfinite(y(0, 0)));
}

TEST_CASE("training learns, and the same seed gives bitwise the same weights") {
    const task t;
    auto run = [&](std::size_t steps) {
        ctdl::model<mlp> net{ctdl::seed{7}};
        ctdl::optim::sgd opt{net, {.lr = 0.05f}};
        float first = 0, last = 0;
        for (std::size_t s = 0; s < steps; ++s) {
            last = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, t.x, t.y);
            if (s == 0) first = last;
        }
        CHECK(last < 0.5f * first);
        return net;
    };
    const auto a = run(300), b = run(300);
    CHECK(std::equal(a.parameters(), a.parameters() + a.parameter_count, b.parameters()));
}

TEST_CASE("fine-tuning a head: the frozen body never changes, and costs no optimizer state") {
    using tune_head = nn::sequential<ctdl::frozen<nn::sequential<nn::linear<784, 256>, nn::relu>>, nn::linear<256, 10>>;
    const task t;
    ctdl::model<tune_head> net{ctdl::seed{3}};
    const std::vector<float> body(net.parameters(), net.parameters() + 784 * 256 + 256);
    const std::vector<float> head(net.parameters() + body.size(), net.parameters() + net.parameter_count);
    ctdl::optim::adamw opt{net, {.lr = 1e-2f}};
    float first = 0, last = 0;
    for (int s = 0; s < 50; ++s) {
        last = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, t.x, t.y);
        if (s == 0) first = last;
    }
    CHECK(last < first);
    CHECK(std::equal(body.begin(), body.end(), net.parameters()));
    CHECK_FALSE(std::equal(head.begin(), head.end(), net.parameters() + body.size()));
}
