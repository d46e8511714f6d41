// expect: named_part_must_be_a_layer<int>(.|\n)*L must be a layer
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<4, 4>, nn::named<"head", int>>;
int main() { return static_cast<int>(ctdl::parameter_count<net_t>); }
