// expect: sequential_part_must_be_a_layer<not_a_layer>(.|\n)*every part must be a layer
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
struct not_a_layer {
    static constexpr std::size_t parameter_count = 3;
};
// Reported once, where the sequential is used; it then passes its input through unchanged,
// so the model and its forward pass below add no second error.
using bad = nn::sequential<nn::linear<4, 3>, not_a_layer, nn::linear<3, 2>>;
int main() {
    ctdl::model<bad> net{ctdl::seed{1}};
    ctdl::tensor<float, ctdl::shape<8, 4>> x;
    auto y = net.forward(x);
    return static_cast<int>(y(0, 0));
}
