// expect: layer_node_must_be_a_ctdl_node<no_node_layer(.|\n)*its template <class Ctx> struct node must be a ctdl::node
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// A descriptor with every member of ctdl::layer but no node at all: a model of it is
// refused once, where its node would be made.
struct no_node_layer : nn::parameter_free {};
int main() {
    ctdl::model<no_node_layer> net{ctdl::seed{1}};
    ctdl::tensor<float, ctdl::shape<2, 3>> x;
    return static_cast<int>(net.forward(x)(0, 0));
}
