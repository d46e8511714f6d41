// expect: linear_input_features_must_match<ctdl::nn::linear<32, 96, true, ctdl::nn::weight_layout::in_out>, ctdl::shape<2, 8, 48> ?>(.|\n)*last extent must equal the layer's input features
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// conv1d (transformers' Conv1D, weight [In, Out]) refuses a wrong width as linear does.
using net_t = nn::sequential<nn::named<"c_attn", nn::conv1d<32, 96>>>;
int main() {
    ctdl::model<net_t> net;
    ctdl::tensor<float, ctdl::shape<2, 8, 48>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0, 0));
}
