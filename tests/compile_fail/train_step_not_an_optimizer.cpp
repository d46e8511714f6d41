// expect: train_step_optimizer_must_be_an_optimizer<half_an_optimizer>(.|\n)*the optimizer must offer model_type, usable, step\(\)
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>;
// step() alone is not an optimizer (ctdl::optimizer): no model_type, lr(), step_count()...
struct half_an_optimizer {
    void step() {}
};
int main() {
    ctdl::model<net_t> net;
    half_an_optimizer opt;
    ctdl::tensor<float, ctdl::shape<5, 4>> x;
    ctdl::tensor<int, ctdl::shape<5>> y;
    return static_cast<int>(ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y));
}
