// expect: rms_norm_features_must_match<ctdl::nn::rms_norm<16(, std::ratio<1, 1000000> ?)?>, ctdl::shape<4, 8> ?>(.|\n)*last extent must be N
#include <ctdl/ctdl.hpp>
using bad = ctdl::output_shape<ctdl::nn::rms_norm<16>, ctdl::shape<4, 8>>;
bad b;
int main() {}
