// The work both translation units of test_isa_mix do, each compiled for its own
// instruction set. Everything here has internal linkage (an anonymous namespace), so the
// two units' copies cannot be merged by the linker; what they share is ctdl's own code,
// which is what the test is about.
#pragma once
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>

#include <string>
#include <typeinfo>
#include <vector>

struct isa_result {
    std::string policy_type;       // typeid(ctdl::cpu).name() in that unit
    std::vector<float> output;     // a forward pass of a fixed model on a fixed input
    std::vector<float> after_step; // the parameters after one sgd step
    float loss = 0;
    std::size_t threads_seen = 0;  // ctdl::cpu::threads() as that unit sees it
    std::vector<float> bf16_logits;  // a bf16 decoding session's logits (prefill, then single steps)
};

namespace {

namespace nn = ctdl::nn;
using isa_arch = nn::sequential<nn::linear<32, 64>, nn::gelu_tanh, nn::layer_norm<64>, nn::linear<64, 64>,
                                nn::relu, nn::rms_norm<64>, nn::linear<64, 10>>;
using isa_input = ctdl::shape<16, 32>;

isa_result isa_work() {
    ctdl::model<isa_arch> net{ctdl::seed{11}};
    ctdl::tensor<float, isa_input> x;
    for (std::size_t i = 0; i < x.size; ++i) x.data()[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
    ctdl::tensor<int, ctdl::shape<16>> y;
    for (std::size_t i = 0; i < y.size; ++i) y.data()[i] = static_cast<int>(i % 10);
    isa_result r;
    r.policy_type = typeid(ctdl::cpu).name();
    r.threads_seen = ctdl::cpu::threads();
    const auto out = net.forward(x);
    r.output.assign(out.begin(), out.end());
    ctdl::optim::sgd opt{net, {.lr = 0.1f}};
    r.loss = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
    r.after_step.assign(net.parameters(), net.parameters() + net.parameter_count);
    // Weights in bf16, widened in each unit's own kernel (AVX-512 or the portable one).
    using gpt = ctdl::models::gpt<24, 12, 32, 2, 1>;
    using frozen_gpt = ctdl::model<ctdl::frozen<gpt>>;
    const frozen_gpt lm = ctdl::freeze(ctdl::model<gpt>{ctdl::seed{5}});
    ctdl::infer::bf16_decoder<frozen_gpt> dec{lm};
    auto logits = dec.prefill(0, std::vector<int>{3, 1, 4, 1, 5, 9});
    r.bf16_logits.assign(logits.begin(), logits.end());
    for (int t : {2, 6, 5}) {
        logits = dec.append(0, t);
        r.bf16_logits.insert(r.bf16_logits.end(), logits.begin(), logits.end());
    }
    return r;
}

}  // namespace
