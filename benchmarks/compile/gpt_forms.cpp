// The pretraining GPT's shape: the trainable form (train step, forward), and with TWO_FORMS
// also the frozen form (freeze, forward). For benchmarks/compile/measure.sh.
#include <ctdl/ctdl.hpp>
#include <ctdl/models/gpt.hpp>
#include <cstdio>
using gpt = ctdl::models::gpt<96, 64, 128, 4, 4, 512>;
int main() {
    ctdl::model<gpt> net{ctdl::seed{1}};
    ctdl::optim::adamw opt{net, {.lr = 3e-3f}};
    ctdl::tensor<int, ctdl::shape<16, 64>> x, y;
    float l = ctdl::train_step(net, opt, ctdl::loss::cross_entropy, x, y);
    const auto a = net.forward(x);
    std::printf("%f %f\n", l, a(0, 0, 0));
#ifdef TWO_FORMS
    ctdl::model<ctdl::frozen<gpt>> f = ctdl::freeze(std::move(net));
    const auto b = f.forward(x);
    std::printf("%f\n", b(0, 0, 0));
#endif
}
