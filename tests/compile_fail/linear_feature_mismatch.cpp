// expect: linear_input_features_must_match<ctdl::nn::linear<128, 10(, true(, ctdl::nn::weight_layout::out_in)?)?>, ctdl::shape<64, 256> ?>(.|\n)*last extent must equal the layer's input features
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// The model's input is known only at forward: a batch of 256 features into linear<128, 10>.
using net_t = nn::sequential<nn::linear<128, 10>, nn::relu>;
int main() {
    ctdl::model<net_t> net;
    ctdl::tensor<float, ctdl::shape<64, 256>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
