// expect: with_frozen_path_must_name_a_part<(.|\n)*no part of the graph has this path
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using mlp = nn::sequential<nn::linear<4, 8>, nn::relu, nn::linear<8, 2>>;
// There is no part 5 (and no "transformer" level in a plain sequential).
using tuned = ctdl::with_frozen<mlp, "5">;
int main() {
    ctdl::model<tuned> net;
    ctdl::tensor<float, ctdl::shape<2, 4>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
