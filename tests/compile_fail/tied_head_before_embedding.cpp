// expect: tied_head_must_come_after_its_embedding<ctdl::nn::tied_head<10, 4, 40, 40(, true)?>, 0, 40>(.|\n)*the head must follow its embedding
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// The head reads its embedding's weight 40 parameters before itself: there is nothing there.
using net_t = nn::sequential<nn::tied_head<10, 4, 40, 40>, nn::relu>;
int main() {
    ctdl::model<net_t> net;
    ctdl::tensor<float, ctdl::shape<2, 4>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
