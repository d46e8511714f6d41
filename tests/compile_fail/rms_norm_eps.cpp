// expect: rms_norm_eps_must_be_a_positive_ratio<std::ratio<0(, 1)?> ?>(.|\n)*Eps must be a std::ratio greater than zero
#include <ctdl/ctdl.hpp>
ctdl::model<ctdl::nn::sequential<ctdl::nn::linear<4, 8>, ctdl::nn::rms_norm<8, std::ratio<0>>>> net;
int main() {}
