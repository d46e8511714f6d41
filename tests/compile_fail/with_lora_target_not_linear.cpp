// expect: lora_base_must_be_a_linear_layer<(.|\n)*Base must be an nn::linear or nn::conv1d layer
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/nn/lora.hpp>
// "ln_1" names each block's first layer norm: LoRA adapts linear layers only.
using tuned = ctdl::with_lora<ctdl::models::gpt2<16, 8, 8, 2, 1>, ctdl::lora::config<2, 4>, "ln_1">;
int main() {
    ctdl::model<tuned> net;
    ctdl::tensor<int, ctdl::shape<1, 8>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0, 0));
}
