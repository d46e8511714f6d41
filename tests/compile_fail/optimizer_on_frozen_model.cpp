// expect: optimizer_needs_a_model_with_gradients<ctdl::model<ctdl::frozen<(.|\n)*no gradients to follow
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
int main() {
    ctdl::model<ctdl::frozen<net_t>> net;
    ctdl::optim::adamw opt{net, {.lr = 0.1f}};
}
