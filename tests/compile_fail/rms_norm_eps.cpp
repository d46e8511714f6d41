// expect: rms_norm_eps_must_be_positive<0.0>(.|\n)*eps must be > 0
#include <ctdl/ctdl.hpp>
ctdl::model<ctdl::nn::sequential<ctdl::nn::linear<4, 8>, ctdl::nn::rms_norm<8, 0.0>>> net;
int main() {}
