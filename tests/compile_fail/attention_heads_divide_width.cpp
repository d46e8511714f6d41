// expect: attention_heads_must_divide_the_width<128, 3>(.|\n)*head count must divide the model width
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt.hpp>
using bad = ctdl::nn::causal_self_attention<128, 3>;
int main() { return static_cast<int>(ctdl::parameter_count<bad>); }
