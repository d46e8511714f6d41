// expect: layer_node_must_be_a_ctdl_node<scale_layer(.|\n)*its template <class Ctx> struct node must be a ctdl::node
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
// A user's layer whose node forgets dout_transform and takes forward's arguments in
// another order. Reported once, where the node is made; a stand-in with the layer's
// shapes takes its place, so the model, its forward pass and a training step add nothing.
struct scale_layer : nn::parameter_free {
    template <class Ctx>
    struct node : ctdl::graph::node_base<Ctx> {
        using T = typename Ctx::value_type;
        using out_shape = typename Ctx::in_shape;
        void forward(const T* in, T* out, const T* params, bool store);
        template <class Ep>
        void backward(const ctdl::graph::backward_io<T, Ep>&) {}
    };
};
using net_type = nn::sequential<nn::linear<4, 4>, scale_layer, nn::linear<4, 2>>;
int main() {
    ctdl::model<net_type> net{ctdl::seed{1}};
    ctdl::optim::sgd opt{net, {.lr = 0.1f}};
    ctdl::tensor<float, ctdl::shape<8, 4>> x;
    ctdl::tensor<int, ctdl::shape<8>> y;
    float loss = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
    return static_cast<int>(loss + net.forward(x)(0, 0));
}
