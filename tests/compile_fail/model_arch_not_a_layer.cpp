// expect: model_arch_must_be_a_layer<not_a_layer>(.|\n)*Arch must be a layer or a graph of layers
#include <ctdl/ctdl.hpp>
// The two parameter counts alone do not make a layer (ctdl::layer): no output_shape,
// visit_parameters or initialize.
struct not_a_layer {
    static constexpr std::size_t parameter_count = 0, trainable_parameter_count = 0;
};
int main() {
    ctdl::model<not_a_layer> net{ctdl::seed{1}};
    return static_cast<int>(net.gradient_count);
}
