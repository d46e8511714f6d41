// expect: residual_branch_must_keep_the_shape<ctdl::nn::linear<8, 4(, true(, ctdl::nn::weight_layout::out_in)?)?>, ctdl::shape<2, 8> ?>(.|\n)*same shape as its input
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using bad = ctdl::output_shape<nn::residual<nn::linear<8, 4>>, ctdl::shape<2, 8>>;
bad b;
int main() {}
