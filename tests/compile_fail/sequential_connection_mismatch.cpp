// expect: sequential_layers_must_connect<ctdl::nn::linear<32, 64(, true(, ctdl::nn::weight_layout::out_in)?)?>, 64, ctdl::nn::linear<32, 10(, true(, ctdl::nn::weight_layout::out_in)?)?>, 32>(.|\n)*input features \(its In\) must equal the output features
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// The mistake is known from the layer types alone: it is reported where the model type is
// used, before any input shape, and the forward pass below adds no second error.
using bad = nn::sequential<nn::linear<32, 64>, nn::relu, nn::linear<32, 10>>;
int main() {
    ctdl::model<bad> net{ctdl::seed{1}};
    ctdl::optim::sgd opt{net, {.lr = 0.1f}};
    ctdl::tensor<float, ctdl::shape<8, 32>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0)) + static_cast<int>(opt.lr());
}
