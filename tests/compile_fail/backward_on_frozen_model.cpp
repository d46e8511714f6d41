// expect: model_is_frozen_and_cannot_be_trained<ctdl::model<ctdl::frozen<(.|\n)*no trainable parameters
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
int main() {
    ctdl::model<ctdl::frozen<net_t>> net;
    ctdl::tensor<float, ctdl::shape<8, 4>> x;
    auto& acts = net.activations_for<ctdl::shape<8, 4>>();
    net.forward(x, acts);
    ctdl::tensor<float, ctdl::shape<8, 2>> dy;
    net.backward(acts, x, dy);
}
