// The contract's MLP against PyTorch on committed golden data (tests/golden/make_mlp_golden.py):
// logits, loss, gradients after one backward, and weights after 10 AdamW steps.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <string>
#include <vector>

#include "golden_files.hpp"


namespace nn = ctdl::nn;
using ctdl::shape;
using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;

namespace {

using ctdl_test::golden;
using ctdl_test::read_floats;
using ctdl_test::relative_error;

struct batch {
    ctdl::tensor<float, shape<16, 784>> x;
    ctdl::tensor<int, shape<16>> y;
    batch() {
        const auto f = ctdl::safetensors::read(golden("mlp_data.safetensors"));
        f.find("x")->copy_to(std::span<float>(x.data(), x.size));
        std::vector<std::int32_t> labels(16);
        f.find("y")->copy_to(std::span<std::int32_t>(labels));
        for (std::size_t i = 0; i < 16; ++i) y(i) = labels[i];
    }
};

}  // namespace

TEST_CASE("golden: the MLP's logits, loss and gradients match PyTorch") {
    auto net = ctdl::load<ctdl::model<mlp>>(golden("mlp_init.safetensors"));
    const batch b;
    const auto step = ctdl::safetensors::read(golden("mlp_step.safetensors"));

    auto& acts = net.activations_for<shape<16, 784>>();
    const auto& logits = net.forward(b.x, acts);
    CHECK(relative_error(logits.data(), read_floats(step, "logits")) < 1e-5);

    const float loss = ctdl::loss::cross_entropy.forward_backward(logits, b.y, acts.dout);
    const float torch_loss = read_floats(step, "loss")[0];
    CHECK(std::abs(loss - torch_loss) / torch_loss < 1e-5);

    net.backward(acts, b.x, acts.dout);
    for (const auto& p : net.parameter_table()) {
        INFO(p.name);
        CHECK(relative_error(net.gradients() + p.offset, read_floats(step, "grad." + p.name)) < 1e-5);
    }
}

TEST_CASE("golden: 10 AdamW steps give PyTorch's weights") {
    auto net = ctdl::load<ctdl::model<mlp>>(golden("mlp_init.safetensors"));
    const batch b;
    ctdl::optim::adamw opt{net, {.lr = 1e-3f, .weight_decay = 1e-2f}};
    for (int i = 0; i < 10; ++i) ctdl::train_step(net, opt, ctdl::loss::cross_entropy, b.x, b.y);
    const auto after = ctdl::safetensors::read(golden("mlp_adamw10.safetensors"));
    const auto init = ctdl::safetensors::read(golden("mlp_init.safetensors"));
    for (const auto& p : net.parameter_table()) {
        INFO(p.name);
        const auto expect = read_floats(after, p.name);
        const auto start = read_floats(init, p.name);
        // compare the change made by training, so that the test is not passed by the
        // initial weights alone
        std::vector<float> ours(p.size), theirs(p.size);
        for (std::size_t i = 0; i < p.size; ++i) {
            ours[i] = net.parameters()[p.offset + i] - start[i];
            theirs[i] = expect[i] - start[i];
        }
        CHECK(relative_error(ours.data(), theirs) < 1e-4);
        CHECK(relative_error(net.parameters() + p.offset, expect) < 1e-5);
    }
}

TEST_CASE("golden: ctdl's snapshot of the trained MLP gives PyTorch's outputs") {
    // tests/golden/check_ctdl_snapshot.py loads a ctdl-written snapshot into torch; here the
    // reverse direction: PyTorch's file into ctdl, saved by ctdl, read back bitwise.
    auto net = ctdl::load<ctdl::model<mlp>>(golden("mlp_init.safetensors"));
    ctdl::save(net, "golden_roundtrip.safetensors");
    const auto again = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>("golden_roundtrip.safetensors");
    CHECK(std::equal(net.parameters(), net.parameters() + net.parameter_count, again.parameters()));
}

TEST_CASE("golden: a snapshot written by ctdl loads into PyTorch's nn.Sequential with the same outputs") {
    // ctdl_mlp_seed7.safetensors is model<mlp>{seed{7}} as ctdl saves it (regenerate with
    // CTDL_WRITE_GOLDEN=1); tests/golden/check_ctdl_snapshot.py loaded it into torch with
    // load_state_dict(strict=True) and stored torch's logits for the golden batch.
    const ctdl::model<mlp> net{ctdl::seed{7}};
    if (std::getenv("CTDL_WRITE_GOLDEN")) ctdl::save(net, golden("ctdl_mlp_seed7.safetensors"));
    ctdl::save(net, "ctdl_mlp_seed7.safetensors");
    const auto ours = ctdl::safetensors::read("ctdl_mlp_seed7.safetensors");
    const auto committed = ctdl::safetensors::read(golden("ctdl_mlp_seed7.safetensors"));
    for (const auto& p : net.parameter_table()) {
        INFO(p.name);
        CHECK(read_floats(ours, p.name) == read_floats(committed, p.name));  // bitwise: same seed, same weights
    }
    const batch b;
    auto frozen = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>(golden("ctdl_mlp_seed7.safetensors"));
    const auto y = frozen.forward(b.x);
    const auto torch_out = ctdl::safetensors::read(golden("torch_logits_for_ctdl_snapshot.safetensors"));
    CHECK(relative_error(y.data(), read_floats(torch_out, "logits")) < 1e-6);
}
