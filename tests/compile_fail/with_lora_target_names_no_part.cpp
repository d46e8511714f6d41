// expect: with_lora_target_must_name_a_part<(.|\n)*no part's path ends in this target
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt2.hpp>
#include <ctdl/nn/lora.hpp>
// GPT-2's attention projections are "attn.c_attn" and "attn.c_proj"; "q_proj" is another model's name.
using tuned = ctdl::with_lora<ctdl::models::gpt2<16, 8, 8, 2, 1>, ctdl::lora::config<2, 4>, "attn.c_attn", "q_proj">;
int main() {
    ctdl::model<tuned> net;
    ctdl::tensor<int, ctdl::shape<1, 8>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0, 0));
}
