// expect: decoder_weights_must_be_the_models_type_or_bf16<float, double>(.|\n)*Weights must be the model's value_type, or ctdl::bf16 for a float model
#include <ctdl/ctdl.hpp>
#include <ctdl/infer/decoder.hpp>
// A float model's decoding session asked to keep its weights in double: only float or bf16.
using gpt = ctdl::models::gpt<16, 8, 16, 2, 1>;
using frozen_gpt = ctdl::model<ctdl::frozen<gpt>>;
int main() {
    frozen_gpt net;
    ctdl::infer::decoder<frozen_gpt, 1, 8, 8, double> dec{net};
    return static_cast<int>(dec.prefill(0, std::vector<int>{1, 2})[0]);
}
