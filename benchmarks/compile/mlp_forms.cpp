// The contract's MLP: the trainable form (train steps, forward, save), and with TWO_FORMS
// also the frozen form (load, forward, freeze). For benchmarks/compile/measure.sh.
#include <ctdl/ctdl.hpp>
#include <cstdio>
namespace nn = ctdl::nn;
using mlp = nn::sequential<nn::linear<784, 256>, nn::relu, nn::linear<256, 256>, nn::relu, nn::linear<256, 10>>;
int main() {
    ctdl::model<mlp> net{ctdl::seed{7}};
    ctdl::optim::sgd opt{net, {.lr = 0.05f}};
    ctdl::tensor<float, ctdl::shape<64, 784>> x;
    ctdl::tensor<int, ctdl::shape<64>> y;
    float l = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
    ctdl::save(net, "m.safetensors");
    const auto a = net.forward(x);
    std::printf("%f %f\n", l, a(0, 0));
#ifdef TWO_FORMS
    auto f = ctdl::load<ctdl::model<ctdl::frozen<mlp>>>("m.safetensors");
    const auto b = f.forward(x);
    ctdl::model<ctdl::frozen<mlp>> moved = ctdl::freeze(std::move(net));
    const auto c = moved.forward(x);
    std::printf("%f %f\n", b(0, 0), c(0, 0));
#endif
}
