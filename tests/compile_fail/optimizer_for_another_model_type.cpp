// expect: optimizer_was_made_for_another_model_type<ctdl::optim::sgd<ctdl::model<ctdl::nn::linear<4, 3(.|\n)*made for a model of another type
#include <ctdl/ctdl.hpp>
namespace nn = ctdl::nn;
int main() {
    ctdl::model<nn::linear<4, 3>> a;
    ctdl::model<nn::linear<4, 2>> b;
    ctdl::optim::sgd opt{a, {.lr = 0.1f}};
    ctdl::tensor<float, ctdl::shape<5, 4>> x;
    ctdl::tensor<int, ctdl::shape<5>> y;
    return static_cast<int>(ctdl::train_step(b, opt, ctdl::loss::cross_entropy, x, y));
}
