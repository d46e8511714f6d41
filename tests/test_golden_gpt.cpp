// ctdl::models::gpt against PyTorch on committed golden data (tests/golden/make_gpt_golden.py):
// a small GPT (V 20, Ctx 12, D 16, 4 heads, 2 blocks, MLP 32) on token ids [3, 12], the logits,
// the mean cross-entropy loss and the gradient of every parameter (embeddings, layer norms,
// fused QKV and output projection of the causal attention, MLP, final layer norm, LM head).
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "golden_files.hpp"

using ctdl::shape;

namespace {

using ctdl_test::golden;
using ctdl_test::read_floats;
using ctdl_test::relative_error;
using ctdl_test::gradient_offset;

constexpr std::size_t V = 20, Ctx = 12, D = 16, H = 4, L = 2, Mlp = 32, B = 3, T = 12;
using G = ctdl::models::gpt<V, Ctx, D, H, L, Mlp>;
using Model = ctdl::model<G>;

constexpr double tolerance = 1e-4;  // the bound, for the logits, the loss and every gradient

/// The int64 token ids `name` of the file, as int.
ctdl::tensor<int, shape<B, T>> read_ids(const ctdl::safetensors::file& f, const std::string& name) {
    const auto* t = f.find(name);
    INFO(name);
    REQUIRE(t != nullptr);
    REQUIRE(t->element_count() == B * T);
    std::vector<std::int64_t> v(B * T);
    t->copy_to(std::span<std::int64_t>(v));
    ctdl::tensor<int, shape<B, T>> out;
    std::transform(v.begin(), v.end(), out.data(), [](std::int64_t i) { return static_cast<int>(i); });
    return out;
}

}  // namespace

TEST_CASE("golden GPT: logits, cross-entropy loss and every gradient match PyTorch") {
    const auto f = ctdl::safetensors::read(golden("gpt_small.safetensors"));
    Model net;
    ctdl::load_into(net, f, {.prefix = "param.", .allow_unexpected = true});

    const auto x = read_ids(f, "x");
    const auto y = read_ids(f, "y");
    const auto expect_logits = read_floats(f, "logits");
    const float expect_loss = read_floats(f, "loss")[0];
    REQUIRE(expect_logits.size() == B * T * V);

    double worst = 0;
    std::string worst_name;
    const auto note = [&](const std::string& what, double err) {
        INFO(what << " relative error " << err);
        CHECK(err < tolerance);
        if (err > worst) worst = err, worst_name = what;
        std::printf("  gpt_small %-26s %.3g\n", what.c_str(), err);
    };

    auto& acts = net.activations_for<shape<B, T>, int>();
    const auto& logits = net.forward(x, acts);
    note("logits", relative_error(logits.data(), expect_logits));
    const float loss = ctdl::loss::cross_entropy.forward_backward(logits, y, acts.dout);
    note("loss", std::abs(static_cast<double>(loss) - expect_loss) / expect_loss);
    net.backward(acts, x, acts.dout);

    std::size_t checked = 0, tensors = 0;
    for (const auto& p : Model::parameter_table()) {
        INFO(p.name);
        REQUIRE(p.trainable);
        note("grad." + p.name, relative_error(net.gradients() + gradient_offset<Model>(p), read_floats(f, "grad." + p.name)));
        checked += p.size;
        ++tensors;
    }
    CHECK(checked == Model::gradient_count);
    CHECK(tensors == 2 + L * 12 + 3);  // embeddings, 12 tensors per block, final layer norm, head
    std::printf("  gpt_small worst relative error %.3g (%s)\n", worst, worst_name.c_str());
}
