// expect: layer_norm_features_must_match<ctdl::nn::layer_norm<16>, ctdl::shape<4, 8> ?>(.|\n)*last extent must be N
#include <ctdl/ctdl.hpp>
using bad = ctdl::output_shape<ctdl::nn::layer_norm<16>, ctdl::shape<4, 8>>;
bad b;
int main() {}
