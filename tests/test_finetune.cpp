// Fine-tuning: freezing parts of a pretrained model by name and by kind (graph/freeze.hpp),
// LoRA adapters (nn/lora.hpp, io/lora_adapter.hpp) against peft on committed golden data
// (tests/golden/make_lora_golden.py), finite differences in double, merge, and adapter files
// in both directions.
#include <catch2/catch.hpp>
#include <ctdl/ctdl.hpp>
#include <ctdl/io/lora_adapter.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/nn/lora.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "golden_files.hpp"
#include "gradcheck.hpp"
#include "temp_dir.hpp"

namespace nn = ctdl::nn;
using ctdl::shape;
using ctdl_test::golden;
using ctdl_test::gradient_offset;
using ctdl_test::read_floats;
using ctdl_test::relative_error;

namespace {

constexpr std::size_t V = 97, Ctx = 16, D = 32, H = 4, L = 2, B = 2, T = 16;
using G = ctdl::models::gpt2<V, Ctx, D, H, L>;
using lora4 = ctdl::lora::config<4, 8>;
using LG = ctdl::with_lora<G, lora4, "attn.c_attn", "attn.c_proj">;
std::string hf_file() { return golden("gpt2_tiny/model.safetensors"); }

const ctdl::safetensors::file& lora_golden() {
    static const auto f = ctdl::safetensors::read(golden("lora_golden.safetensors"));
    return f;
}

ctdl::tensor<int, shape<B, T>> golden_ids() {
    const auto* t = lora_golden().find("ids");
    REQUIRE(t != nullptr);
    std::vector<std::int64_t> v(t->element_count());
    t->copy_to(std::span<std::int64_t>(v));
    REQUIRE(v.size() == B * T);
    ctdl::tensor<int, shape<B, T>> x;
    std::transform(v.begin(), v.end(), x.data(), [](std::int64_t i) { return static_cast<int>(i); });
    return x;
}
/// transformers' causal-LM labels: the next token, none at the last position.
ctdl::tensor<int, shape<B, T>> shifted(const ctdl::tensor<int, shape<B, T>>& x) {
    ctdl::tensor<int, shape<B, T>> y;
    for (std::size_t b = 0; b < B; ++b)
        for (std::size_t t = 0; t < T; ++t) y(b, t) = t + 1 < T ? x(b, t + 1) : -100;
    return y;
}
constexpr ctdl::loss::cross_entropy_t hf_loss{.ignore_index = -100};

template <class M>
std::vector<float> params_of(const M& m) {
    return {m.parameters(), m.parameters() + M::parameter_count};
}
template <class A, class B2>
void check_same_names() {
    const auto& a = ctdl::model<A>::parameter_table();
    const auto& b = ctdl::model<B2>::parameter_table();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].name);
        CHECK(a[i].name == b[i].name);
        CHECK(a[i].shape == b[i].shape);
        CHECK(a[i].offset == b[i].offset);
    }
}
/// The kernel passes of one training step's backward (forward and loss not counted).
template <class M>
ctdl::pass_counts backward_passes(M& net, const ctdl::tensor<int, shape<B, T>>& x) {
    auto& acts = net.template activations_for<shape<B, T>, int>();
    const auto& logits = net.forward(x, acts);
    hf_loss.forward_backward(logits, shifted(x), acts.dout);
    ctdl::count_passes counting;
    net.backward(acts, x, acts.dout);
    return counting.counts();
}

}  // namespace

// ------------------------------------------------------------------ freezing parts by name

TEST_CASE("gpt2 with its embeddings and first block frozen by name: same names, the HF file loads as it is, "
          "no gradient, optimizer state or backward work for the frozen parts, their weights unchanged") {
    using F = ctdl::with_frozen<G, "transformer.wte", "transformer.wpe", "transformer.h.0">;
    STATIC_REQUIRE(F::context_length == Ctx);  // still a gpt2 model (graph/rewrite.hpp's rewritten hook)
    check_same_names<G, F>();
    constexpr std::size_t block = ctdl::parameter_count<ctdl::models::gpt2_block<D, H>>;
    STATIC_REQUIRE(ctdl::model<F>::gradient_count == ctdl::model<G>::gradient_count - V * D - Ctx * D - block);

    auto full = ctdl::load<ctdl::model<G>>(hf_file());
    ctdl::model<F> net{ctdl::seed{9}};
    ctdl::load_into(net, hf_file());
    const auto before = params_of(net);
    CHECK(before == params_of(full));
    const auto x = golden_ids();

    // The forward is the same function; the backward skips block 0 entirely (nothing before it
    // trains) and the tied head's dE GEMM (wte is frozen), and scatters into no embedding.
    CHECK(ctdl::equal(full.forward(x), net.forward(x)));
    const auto pf = backward_passes(full, x), pn = backward_passes(net, x);
    constexpr std::uint64_t block_gemms = 8;  // c_attn, attn.c_proj, c_fc, mlp.c_proj: dW and dX each
    CHECK(pn[ctdl::pass::gemm] == pf[ctdl::pass::gemm] - block_gemms - 1);
    CHECK(pn[ctdl::pass::attention] + 1 == pf[ctdl::pass::attention]);
    CHECK(pf[ctdl::pass::gather] > 0);
    CHECK(pn[ctdl::pass::gather] == 0);
    CHECK(pn.total() < pf.total());

    ctdl::optim::adamw opt{net, {.lr = 1e-2f, .weight_decay = 0.1f}};
    std::size_t state_bytes = 0;
    for (const auto& s : opt.state_tensors()) state_bytes += s.values.size() * sizeof(float);
    CHECK(state_bytes == 2 * ctdl::model<F>::gradient_count * sizeof(float));  // m and v, trainable only
    for (int i = 0; i < 3; ++i) ctdl::train_step(net, opt, hf_loss, x, shifted(x));
    const auto after = params_of(net);
    for (const auto& p : ctdl::model<F>::parameter_table()) {
        const bool same = std::equal(before.begin() + p.offset, before.begin() + p.offset + p.size, after.begin() + p.offset);
        INFO(p.name);
        CHECK(same == !p.trainable);
        CHECK(p.trainable == !(p.name.starts_with("transformer.wte") || p.name.starts_with("transformer.wpe") ||
                               p.name.starts_with("transformer.h.0.")));
    }
}

TEST_CASE("every layer norm frozen by kind (with_frozen_where<A, nn::is_norm>), on gpt2 and models::gpt") {
    using F = ctdl::with_frozen_where<G, nn::is_norm>;
    check_same_names<G, F>();
    STATIC_REQUIRE(ctdl::model<F>::gradient_count == ctdl::model<G>::gradient_count - 2 * D * (2 * L + 1));
    for (const auto& p : ctdl::model<F>::parameter_table()) {
        INFO(p.name);
        CHECK(p.trainable == (p.name.find(".ln_") == std::string::npos));
    }
    using gpt = ctdl::models::gpt<24, 8, 16, 2, 3>;
    using FG = ctdl::with_frozen_where<gpt, nn::is_norm>;
    STATIC_REQUIRE(FG::context_length == 8);
    STATIC_REQUIRE(ctdl::model<FG>::gradient_count == ctdl::model<gpt>::gradient_count - 2 * 16 * (2 * 3 + 1));
    // Freezing by kind and by path give the same type where they name the same parts.
    using by_path = ctdl::with_frozen<gpt, "2.0.0.0", "2.0.1.0", "2.1.0.0", "2.1.1.0", "2.2.0.0", "2.2.1.0", "3">;
    STATIC_REQUIRE(std::is_same_v<FG, by_path>);
}

// ------------------------------------------------------------------ LoRA against peft

TEST_CASE("LoRA on gpt2's attention Conv1D layers: peft's adapter loads onto the save_pretrained base, and the "
          "logits, loss and adapter gradients equal peft's") {
    using M = ctdl::model<LG>;
    // The adapted model's trainable parameters are the adapters alone, named as peft names them.
    std::vector<std::string> trainable;
    for (const auto& p : M::parameter_table())
        if (p.trainable) trainable.push_back(p.name);
    CHECK(trainable == std::vector<std::string>{
                           "transformer.h.0.attn.c_attn.lora_A.weight", "transformer.h.0.attn.c_attn.lora_B.weight",
                           "transformer.h.0.attn.c_proj.lora_A.weight", "transformer.h.0.attn.c_proj.lora_B.weight",
                           "transformer.h.1.attn.c_attn.lora_A.weight", "transformer.h.1.attn.c_attn.lora_B.weight",
                           "transformer.h.1.attn.c_proj.lora_A.weight", "transformer.h.1.attn.c_proj.lora_B.weight"});
    STATIC_REQUIRE(M::gradient_count == L * (4 * D + 3 * D * 4) + L * (4 * D + D * 4));

    M net{ctdl::seed{3}};
    ctdl::lora::load_base(net, hf_file());
    ctdl::lora::load_adapter(net, golden("lora_peft"));
    const auto& f = lora_golden();
    const auto x = golden_ids();
    auto& acts = net.activations_for<shape<B, T>, int>();
    const auto& logits = net.forward(x, acts);
    const double e_logits = relative_error(logits.data(), read_floats(f, "logits"));
    const float loss = hf_loss.forward_backward(logits, shifted(x), acts.dout);
    const double e_loss = std::abs(loss - read_floats(f, "loss")[0]) / read_floats(f, "loss")[0];
    net.backward(acts, x, acts.dout);
    double worst = 0;
    for (const auto& p : M::parameter_table()) {
        if (!p.trainable) continue;
        const double e = relative_error(net.gradients() + gradient_offset<M>(p), read_floats(f, "grad." + p.name));
        INFO(p.name << " gradient relative error " << e);
        CHECK(e < 1e-5);
        worst = std::max(worst, e);
    }
    std::printf("  LoRA vs peft: logits relative error %.3g, loss %.3g, worst adapter gradient %.3g\n", e_logits,
                e_loss, worst);
    CHECK(e_logits < 1e-5);
    CHECK(e_loss < 1e-5);
    // Without its adapters' effect (B = 0) the model is its base: the adapter really was applied.
    auto base = ctdl::load<ctdl::model<ctdl::frozen<G>>>(hf_file());
    CHECK(relative_error(base.forward(x).data(), read_floats(f, "logits")) > 1e-2);
}

TEST_CASE("LoRA starts equal to its base (B = 0, A as peft initialises it), and only the adapters change in training") {
    using M = ctdl::model<LG>;
    M net{ctdl::seed{5}};
    ctdl::lora::load_base(net, hf_file());
    auto base = ctdl::load<ctdl::model<ctdl::frozen<G>>>(hf_file());
    const auto x = golden_ids();
    CHECK(ctdl::equal(net.forward(x), base.forward(x)));
    // A ~ U(-1/sqrt(in), 1/sqrt(in)), not zero; B = 0.
    const auto a = net.parameter("transformer.h.1.attn.c_attn.lora_A.weight");
    const auto b = net.parameter("transformer.h.1.attn.c_attn.lora_B.weight");
    const float bound = 1 / std::sqrt(float(D));
    CHECK(std::all_of(b.values.begin(), b.values.end(), [](float v) { return v == 0; }));
    CHECK(std::all_of(a.values.begin(), a.values.end(), [&](float v) { return std::abs(v) <= bound; }));
    CHECK(std::any_of(a.values.begin(), a.values.end(), [&](float v) { return std::abs(v) > bound / 2; }));

    const auto before = params_of(net);
    ctdl::optim::adamw opt{net, {.lr = 1e-2f}};
    std::size_t state = 0;
    for (const auto& s : opt.state_tensors()) state += s.values.size();
    CHECK(state == 2 * M::gradient_count);  // the adapters' size times adamw's two moments
    float first = 0, last = 0;
    for (int i = 0; i < 8; ++i) {
        last = ctdl::train_step(net, opt, hf_loss, x, shifted(x));
        if (i == 0) first = last;
    }
    CHECK(last < first);
    const auto after = params_of(net);
    for (const auto& p : M::parameter_table()) {
        INFO(p.name);
        const bool same = std::equal(before.begin() + p.offset, before.begin() + p.offset + p.size, after.begin() + p.offset);
        CHECK(same == !p.trainable);
    }
}

namespace {
/// A LoRA step (frozen output layer) keeps its gradients in the step's dead dL/dlogits
/// buffer (model::backward_step): the same gradients and updates, bitwise, as the plain
/// backward into the model's own buffer, and no gradient buffer of its own.
template <class A>
void check_gradients_in_dout(const ctdl::tensor<int, shape<B, T>>& x) {
    using M = ctdl::model<A>;
    STATIC_REQUIRE(M::template activations<shape<B, T>, int>::gradients_in_dout);
    const auto y = shifted(x);
    M step{ctdl::seed{3}}, ref{ctdl::seed{3}};
    for (std::size_t i = 0; i < M::parameter_count; ++i) {  // B != 0, so every adapter gradient is non-zero
        step.parameters()[i] += 0.01f * std::sin(float(i));
        ref.parameters()[i] += 0.01f * std::sin(float(i));
    }
    // The reference's own buffer starts as NaN: a range its backward left unwritten would
    // differ from the step's (which holds dL/dlogits there before).
    std::fill(ref.gradients(), ref.gradients() + M::gradient_count, std::numeric_limits<float>::quiet_NaN());
    auto& ra = ref.template activations_for<shape<B, T>, int>();
    hf_loss.forward_backward(ref.forward(x, ra), y, ra.dout);
    ref.backward(ra, x, ra.dout);
    auto& sa = step.template activations_for<shape<B, T>, int>();
    hf_loss.forward_backward(step.forward(x, sa), y, sa.dout);
    step.backward_step(sa, x);
    CHECK(step.gradient_bytes() == 0);
    CHECK(step.gradients() == sa.dout.data());
    CHECK(ref.gradient_bytes() == M::gradient_count * sizeof(float));
    CHECK(std::equal(ref.gradients(), ref.gradients() + M::gradient_count, step.gradients()));
    CHECK(std::all_of(step.gradients(), step.gradients() + M::gradient_count, [](float g) { return std::isfinite(g); }));
    // A named gradient reads where the gradients are.
    const auto& table = M::parameter_table();
    const auto& name = std::find_if(table.rbegin(), table.rend(), [](const auto& p) { return p.trainable; })->name;
    CHECK(std::equal(step.gradient(name).values.begin(), step.gradient(name).values.end(),
                     ref.gradient(name).values.begin()));
    // A copy takes the values into a buffer of its own.
    const M copy = step;
    CHECK(copy.gradient_bytes() == M::gradient_count * sizeof(float));
    CHECK(std::equal(copy.gradients(), copy.gradients() + M::gradient_count, step.gradients()));
    // Accumulating onto gradients that the next loss overwrites is refused.
    CHECK_THROWS_AS(step.backward(sa, x, sa.dout, true), ctdl::error);

    // Training: train_step (backward_step) and the plain backward + step give the same
    // parameters bitwise, and the step model never makes a gradient buffer.
    M a{ctdl::seed{9}}, b{ctdl::seed{9}};
    ctdl::optim::adamw oa{a, {.lr = 1e-2f}}, ob{b, {.lr = 1e-2f}};
    auto& ba = b.template activations_for<shape<B, T>, int>();
    for (int i = 0; i < 4; ++i) {
        const float la = ctdl::train_step(a, oa, hf_loss, x, y);
        const float lb = hf_loss.forward_backward(b.forward(x, ba), y, ba.dout);
        b.backward(ba, x, ba.dout);
        ob.step();
        CHECK(la == lb);
    }
    CHECK(a.gradient_bytes() == 0);
    CHECK(std::equal(a.parameters(), a.parameters() + M::parameter_count, b.parameters()));

    // Activations the user owns may outlive nothing: backward_step then uses the own buffer.
    typename M::template activations<shape<B, T>, int> mine;
    hf_loss.forward_backward(a.forward(x, mine), y, mine.dout);
    a.backward_step(mine, x);
    CHECK(a.gradients() != mine.dout.data());
    CHECK(a.gradient_bytes() == M::gradient_count * sizeof(float));
}
}  // namespace

TEST_CASE("a LoRA step keeps its gradients in the dead dL/dlogits buffer: the same gradients and updates bitwise, and "
          "no gradient buffer of its own (gpt2's tied frozen head, models::gpt's frozen head)") {
    const auto x = golden_ids();
    check_gradients_in_dout<LG>(x);
    check_gradients_in_dout<ctdl::with_lora<ctdl::models::gpt<V, Ctx, D, H, L>, lora4, "qkv", "proj">>(x);
    // Where the last part writes gradients, dL/dlogits is still being read when they are written.
    STATIC_REQUIRE_FALSE(ctdl::model<G>::activations<shape<B, T>, int>::gradients_in_dout);  // the tied head trains wte
    STATIC_REQUIRE_FALSE(ctdl::model<ctdl::models::gpt<V, Ctx, D, H, L>>::activations<shape<B, T>, int>::gradients_in_dout);
    // A frozen head over trainable blocks: the gradients fit, and go there too.
    using head_frozen = ctdl::with_frozen<ctdl::models::gpt<V, Ctx, D, H, L>, "4">;
    STATIC_REQUIRE(ctdl::model<head_frozen>::activations<shape<B, T>, int>::gradients_in_dout ==
                   (ctdl::model<head_frozen>::gradient_count <= B * T * V));
}

TEST_CASE("LoRA backward matches finite differences in double: Conv1D bases (gpt2) and linear bases (models::gpt)") {
    {
        using tiny = ctdl::with_lora<ctdl::models::gpt2<11, 6, 8, 2, 2>, ctdl::lora::config<2, 3>, "attn.c_attn",
                                     "mlp.c_proj">;
        ctdl::model<tiny, ctdl::cpu, double> net{ctdl::seed{4}};
        for (std::size_t i = 0; i < ctdl::parameter_count<tiny>; ++i) net.parameters()[i] *= 3;  // B != 0 too
        ctdl::tensor<int, shape<2, 6>> x;
        for (std::size_t i = 0; i < 12; ++i) x.data()[i] = static_cast<int>((i * 5 + 2) % 11);
        const auto r = ctdl_test::gradcheck(net, x);
        std::printf("  LoRA on gpt2 (double) finite differences: worst relative error %.3g over %zu parameters\n",
                    r.max_rel_error, r.checked);
        CHECK(r.checked == ctdl::model<tiny, ctdl::cpu, double>::gradient_count);
        CHECK(r.max_rel_error < 1e-6);
    }
    {
        // A linear base, a trainable part before it (so dx flows through the adapter) and after.
        using net_t = ctdl::with_lora<nn::sequential<nn::linear<5, 7>, nn::tanh, nn::linear<7, 6>, nn::relu, nn::linear<6, 3>>,
                                      ctdl::lora::config<2, 4>, "0", "2">;
        using unfrozen = nn::sequential<nn::lora<nn::linear<5, 7>, ctdl::lora::config<2, 4>>, nn::tanh,
                                        nn::lora<nn::linear<7, 6>, ctdl::lora::config<2, 4>>, nn::relu, nn::linear<6, 3>>;
        STATIC_REQUIRE(ctdl::model<net_t>::gradient_count == 2 * (5 + 7) + 2 * (7 + 6));
        ctdl::model<unfrozen, ctdl::cpu, double> net{ctdl::seed{6}};
        for (std::size_t i = 0; i < ctdl::parameter_count<unfrozen>; ++i) net.parameters()[i] += 0.3 * std::sin(double(i));
        ctdl::tensor<double, shape<4, 5>> x;
        ctdl_test::fill_uniform(x, 3);
        const auto r = ctdl_test::gradcheck(net, x);
        CHECK(r.checked == 2 * (5 + 7) + 2 * (7 + 6) + 6 * 3 + 3);
        CHECK(r.max_rel_error < 1e-6);
    }
}

// ------------------------------------------------------------------ merge

TEST_CASE("lora::merge folds the adapters into the base weights: a plain frozen base model with equal outputs") {
    using M = ctdl::model<LG>;
    M net{ctdl::seed{3}};
    ctdl::lora::load_base(net, hf_file());
    ctdl::lora::load_adapter(net, golden("lora_peft"));
    auto merged = ctdl::lora::merge(net);
    STATIC_REQUIRE(std::is_same_v<decltype(merged),
                                  ctdl::model<ctdl::frozen<ctdl::lora::base_of<LG>>>>);
    STATIC_REQUIRE(ctdl::parameter_count<ctdl::lora::base_of<LG>> == ctdl::parameter_count<G>);
    // Into the named base architecture: its snapshot is the base's, plus the folded weights.
    auto as_gpt2 = ctdl::lora::merge<G>(net);
    check_same_names<G, ctdl::lora::base_of<LG>>();
    const auto x = golden_ids();
    const auto& want = net.forward(x);
    const double e = relative_error(merged.forward(x).data(), std::vector<float>(want.data(), want.data() + want.size));
    std::printf("  merged vs unmerged LoRA logits: relative error %.3g\n", e);
    CHECK(e < 1e-6);
    CHECK(ctdl::equal(merged.forward(x), as_gpt2.forward(x)));
    // And on a linear base (models::gpt).
    using gpt = ctdl::models::gpt<24, 8, 16, 2, 2>;
    using LGpt = ctdl::with_lora<gpt, ctdl::lora::config<2, 2>, "qkv", "4">;  // every block's QKV, and the head
    ctdl::model<LGpt> g{ctdl::seed{8}};
    for (const auto& p : ctdl::model<LGpt>::parameter_table())
        if (p.name.find("lora_B") != std::string::npos)
            for (std::size_t i = 0; i < p.size; ++i) g.parameters()[p.offset + i] = 0.1f * std::cos(float(i));
    auto gm = ctdl::lora::merge<gpt>(g);
    ctdl::tensor<int, shape<2, 8>> ids;
    for (std::size_t i = 0; i < 16; ++i) ids.data()[i] = static_cast<int>((i * 7) % 24);
    const auto& gy = g.forward(ids);
    CHECK(relative_error(gm.forward(ids).data(), std::vector<float>(gy.data(), gy.data() + gy.size)) < 1e-6);
}

// ------------------------------------------------------------------ adapter files

namespace {
/// The adapter ctdl writes for the golden script (and the test below reads back).
ctdl::model<LG> ctdl_adapter_model() {
    ctdl::model<LG> net{ctdl::seed{21}};
    ctdl::lora::load_base(net, hf_file());
    std::size_t k = 0;
    for (const auto& p : ctdl::model<LG>::parameter_table())
        if (p.name.find("lora_B") != std::string::npos)
            for (std::size_t i = 0; i < p.size; ++i) net.parameters()[p.offset + i] = 0.3f * std::sin(float(++k));
    return net;
}
}  // namespace

TEST_CASE("LoRA adapter files: save_adapter writes peft's layout, which load_adapter reads back bitwise, and peft loads "
          "ctdl's adapter with equal logits") {
    const auto net = ctdl_adapter_model();
    ctdl_test::temp_dir dir;
    ctdl::lora::save_adapter(net, dir.path / "a", {.base_model = "gpt2_tiny"});
    const auto f = ctdl::safetensors::read(dir.path / "a" / "adapter_model.safetensors");
    CHECK(f.tensors().size() == 8);
    CHECK(f.find("base_model.model.transformer.h.1.attn.c_proj.lora_B.weight") != nullptr);
    const auto cfg = ctdl::json::parse(ctdl_test::slurp(dir.path / "a" / "adapter_config.json"));
    CHECK(cfg.find("peft_type")->text == "LORA");
    CHECK(cfg.find("r")->as_u64() == 4u);
    CHECK(cfg.find("lora_alpha")->as_u64() == 8u);
    CHECK(cfg.find("fan_in_fan_out")->boolean);
    CHECK(cfg.find("target_modules")->items.size() == 4);

    ctdl::model<LG> back{ctdl::seed{1}};
    ctdl::lora::load_base(back, hf_file());
    ctdl::lora::load_adapter(back, dir.path / "a");
    CHECK(params_of(back) == params_of(net));

    // The committed copy of that directory is what the golden script loaded with peft.
    ctdl::model<LG> committed{ctdl::seed{1}};
    ctdl::lora::load_base(committed, hf_file());
    ctdl::lora::load_adapter(committed, golden("lora_ctdl"));
    CHECK(params_of(committed) == params_of(net));
    const auto x = golden_ids();
    const double e = relative_error(committed.forward(x).data(), read_floats(lora_golden(), "ctdl_logits"));
    std::printf("  ctdl's adapter in peft: logits relative error %.3g\n", e);
    CHECK(e < 1e-5);
}

TEST_CASE("load_adapter refuses a config or file that does not fit the type, naming the field, and changes nothing") {
    const auto net = ctdl_adapter_model();
    ctdl_test::temp_dir dir;
    ctdl::lora::save_adapter(net, dir.path / "a");
    const std::string cfg = ctdl_test::slurp(dir.path / "a" / "adapter_config.json");
    auto variant = [&](const std::string& from, const std::string& to) {
        const auto d = dir.path / ("v" + std::to_string(std::hash<std::string>{}(from + to) % 100000));
        std::filesystem::create_directories(d);
        std::filesystem::copy_file(dir.path / "a" / "adapter_model.safetensors", d / "adapter_model.safetensors");
        std::string c = cfg;
        const auto at = c.find(from);
        REQUIRE(at != std::string::npos);
        c.replace(at, from.size(), to);
        ctdl_test::spit(d / "adapter_config.json", c);
        return d;
    };
    ctdl::model<LG> target{ctdl::seed{2}};
    const auto before = params_of(target);
    auto refused = [&](const std::filesystem::path& d, const std::string& says) {
        try {
            ctdl::lora::load_adapter(target, d);
            FAIL("loaded " << d);
        } catch (const ctdl::error& e) {
            INFO(e.what());
            CHECK(std::string(e.what()).find(says) != std::string::npos);
        }
        CHECK(params_of(target) == before);
    };
    refused(variant("\"r\": 4", "\"r\": 8"), "r is 8");
    refused(variant("\"lora_alpha\": 8", "\"lora_alpha\": 16"), "lora_alpha is 16");
    refused(variant("\"peft_type\": \"LORA\"", "\"peft_type\": \"IA3\""), "peft_type");
    refused(variant("\"use_dora\": false", "\"use_dora\": true"), "use_dora");
    refused(variant("\"r\": 4,", "\"r\": 4,,"), "adapter_config.json");
    {  // a tensor missing from the file
        const auto d = dir.path / "missing";
        std::filesystem::create_directories(d);
        std::filesystem::copy_file(dir.path / "a" / "adapter_config.json", d / "adapter_config.json");
        ctdl::safetensors::writer w;
        const auto f = ctdl::safetensors::read(dir.path / "a" / "adapter_model.safetensors");
        std::vector<std::vector<float>> kept;  // the writer reads them at write(): they must live until then
        kept.reserve(f.tensors().size());
        for (const auto& t : f.tensors()) {
            if (t.name.find("h.1.attn.c_proj.lora_B") != std::string::npos) continue;
            auto& v = kept.emplace_back(t.element_count());
            t.copy_to(std::span<float>(v));
            w.add(t.name, t.shape, std::span<const float>(v));
        }
        w.write(d / "adapter_model.safetensors");
        refused(d, "h.1.attn.c_proj.lora_B.weight");
    }
    // A base snapshot is not an adapter: load_base refuses a file with adapter tensors in it.
    CHECK_THROWS_AS(ctdl::lora::load_base(target, dir.path / "a" / "adapter_model.safetensors"), ctdl::error);
    CHECK(params_of(target) == before);
}

TEST_CASE("write the ctdl adapter for the golden script", "[.write_ctdl_adapter]") {
    ctdl::lora::save_adapter(ctdl_adapter_model(), golden("lora_ctdl"), {.base_model = "gpt2_tiny"});
}

// ----------------------------------------------- packed frozen weights (frozen_packs.hpp)

namespace {
/// Training A with packed frozen weights (the default) and B without (keep_packed_weights
/// false) gives the same losses, parameters and kernel passes bit for bit; A keeps packs, B
/// none; an optimizer step does not repack (only trainable parameters change), a write of a
/// frozen weight through parameter(name) does, and both models then agree again.
template <class A, std::size_t Bt, std::size_t Tt>
void check_frozen_packs(const char* frozen_weight) {
    using M = ctdl::model<A>;
    using S = shape<Bt, Tt>;
    ctdl::tensor<int, S> x, y;
    for (std::size_t i = 0; i < S::size; ++i) x.data()[i] = int((i * 37 + 11) % V), y.data()[i] = int((i * 53 + 5) % V);
    M a{ctdl::seed{4}}, b{ctdl::seed{4}};
    b.keep_packed_weights(false);
    CHECK(a.keeps_packed_weights());
    CHECK_FALSE(b.keeps_packed_weights());
    ctdl::optim::adamw oa{a, {.lr = 1e-2f}}, ob{b, {.lr = 1e-2f}};
    auto& aa = a.template activations_for<S, int>();
    auto& ba = b.template activations_for<S, int>();
    std::uint64_t packed_at = 0;
    for (int i = 0; i < 3; ++i) {
        ctdl::count_passes ca;
        const float la = ctdl::train_step(a, oa, ctdl::loss::cross_entropy, x, y);
        const auto pa = ca.counts();
        ctdl::count_passes cb;
        const float lb = ctdl::train_step(b, ob, ctdl::loss::cross_entropy, x, y);
        const auto pb = cb.counts();
        CHECK(la == lb);
        CHECK(pa.n == pb.n);
        if (i == 0) packed_at = aa.packed_version;
        CHECK(aa.packed_version == packed_at);  // the optimizer's writes did not repack
    }
    CHECK(std::equal(a.parameters(), a.parameters() + M::parameter_count, b.parameters()));
    CHECK(aa.packs.size() > 0);
    CHECK(ba.packs.size() == 0);
    // A frozen weight changed by name: A repacks before its next forward, and agrees with B.
    for (auto* m : {&a, &b}) {
        auto w = m->parameter(frozen_weight);
        REQUIRE_FALSE(w.trainable);
        for (std::size_t i = 0; i < w.values.size(); ++i) w.values[i] += 0.05f * std::cos(float(i));
    }
    const float la = ctdl::train_step(a, oa, ctdl::loss::cross_entropy, x, y);
    const float lb = ctdl::train_step(b, ob, ctdl::loss::cross_entropy, x, y);
    CHECK(aa.packed_version != packed_at);
    CHECK(la == lb);
    CHECK(ctdl::equal(a.forward(x), b.forward(x)));
    CHECK(std::equal(a.parameters(), a.parameters() + M::parameter_count, b.parameters()));
    // Turned off on A: its packs are freed at the next forward, and nothing changes.
    a.keep_packed_weights(false);
    CHECK(ctdl::train_step(a, oa, ctdl::loss::cross_entropy, x, y) == ctdl::train_step(b, ob, ctdl::loss::cross_entropy, x, y));
    CHECK(aa.packs.size() == 0);
    CHECK(std::equal(a.parameters(), a.parameters() + M::parameter_count, b.parameters()));
}
}  // namespace

TEST_CASE("LoRA's frozen base weights are packed once per change: the same training bit for bit as without packs, "
          "repacked after a frozen weight is written") {
    // 160 rows: the forward (x Wᵀ) and the backward (dZ W) GEMMs both pack their weight.
    using LGpt = ctdl::with_lora<ctdl::models::gpt<V, 80, D, H, L>, lora4, "qkv", "proj">;
    check_frozen_packs<LGpt, 2, 80>("2.0.1.1.weight");  // block 0's first MLP layer
    // gpt2's Conv1D bases and its frozen tied head.
    using LG2 = ctdl::with_lora<ctdl::models::gpt2<V, 80, D, H, L>, lora4, "attn.c_attn", "attn.c_proj">;
    check_frozen_packs<LG2, 2, 80>("transformer.h.1.mlp.c_fc.weight");
    check_frozen_packs<LG2, 2, 80>("transformer.wte.weight");
    // Where a layer packs depends on the policy: the cpu's does wherever its GEMM packs B.
    using base_qkv = ctdl::nn::linear<D, 3 * D>;
    STATIC_REQUIRE(ctdl::ops::frozen_weight_packs<ctdl::cpu, float, base_qkv::layout, 160, 3 * D, D, true, true>::any ==
                   ctdl::cpu_kernels::packs_b<ctdl::trans::n, ctdl::trans::t, float>(160, 3 * D, D));
}
