// expect: optimizer_needs_a_model_with_gradients<ctdl::model<ctdl::frozen<(.|\n)*no gradients to follow
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
int main() {
    ctdl::model<ctdl::frozen<net_t>> net;
    ctdl::optim::sgd opt{net, {.lr = 0.1f}};
    ctdl::tensor<float, ctdl::shape<5, 4>> x;
    ctdl::tensor<int, ctdl::shape<5>> y;
    return static_cast<int>(ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y));
}
