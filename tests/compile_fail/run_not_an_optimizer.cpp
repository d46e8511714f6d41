// expect: run_optimizer_must_be_an_optimizer<half_an_optimizer>(.|\n)*train::run: the optimizer must offer model_type
#include <ctdl/ctdl.hpp>
using gpt = ctdl::models::gpt<32, 8, 16, 2, 1>;
// step() and lr() alone are not an optimizer (ctdl::optimizer).
struct half_an_optimizer {
    void step() {}
    float lr() const { return 0; }
};
ctdl::train::report train(ctdl::model<gpt>& net, const ctdl::data::text_dataset& ds, ctdl::rng& g) {
    half_an_optimizer opt;
    return ctdl::train::run<2, 8>(net, opt, ds, g, ctdl::train::options{});
}
int main() {}
