// expect: linear_input_features_must_match<ctdl::nn::linear<128, 10(, true)?>, ctdl::shape<64, 256> ?>(.|\n)*last extent must equal the layer's input features
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using bad = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<128, 10>>;
int main() {
    ctdl::model<bad> net;
    ctdl::tensor<float, ctdl::shape<64, 784>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
