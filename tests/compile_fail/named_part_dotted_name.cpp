// expect: part_name_must_not_start_or_end_with_a_dot<false>(.|\n)*may not start or end with a dot
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// "transformer.h." would make names such as "transformer.h..0.weight".
using net_t = nn::sequential<nn::named<"transformer.h.", nn::linear<4, 4>>>;
int main() {
    ctdl::model<net_t> net;
    ctdl::tensor<float, ctdl::shape<2, 4>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
