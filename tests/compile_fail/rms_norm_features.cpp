// expect: rms_norm_features_must_match<ctdl::nn::rms_norm<16(, 9.99999999999999954748e-7)?>, ctdl::shape<4, 8> ?>(.|\n)*last extent must be N
#include <ctdl/ctdl.hpp>
using bad = ctdl::output_shape<ctdl::nn::rms_norm<16>, ctdl::shape<4, 8>>;
bad b;
int main() {}
