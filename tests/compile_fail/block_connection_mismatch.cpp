// expect: sequential_layers_must_connect<block, 64, ctdl::nn::layer_norm<32>, 32>(.|\n)*input features \(its In\) must equal the output features
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// A named block states its features from its parts (through relu, a residual and frozen<>),
// so the layer after it is checked against it.
struct block : nn::sequential<nn::linear<16, 64>, nn::relu, nn::residual<nn::layer_norm<64>, ctdl::frozen<nn::linear<64, 64>>>> {};
using bad = nn::sequential<block, nn::layer_norm<32>, nn::linear<32, 2>>;
int main() { return static_cast<int>(ctdl::parameter_count<bad>); }
