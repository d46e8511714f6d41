// expect: model_policy_must_be_an_execution_policy<not_a_policy>(.|\n)*Exec must be an execution policy
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// A policy type that offers none of what the layers run through (ctdl::execution_policy).
struct not_a_policy {
    static constexpr bool host_accessible = true;
};
int main() {
    ctdl::model<nn::sequential<nn::linear<4, 3>, nn::relu, nn::linear<3, 2>>, not_a_policy> net{ctdl::seed{1}};
    return static_cast<int>(net.parameter_count);
}
