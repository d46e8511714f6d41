// expect: run_data_must_be_a_batch_source<std::vector<int>, 2, 8>(.|\n)*train::run: the data must be a batch source
#include <ctdl/ctdl.hpp>

#include <vector>
using gpt = ctdl::models::gpt<32, 8, 16, 2, 1>;
// Tokens alone are not a batch source (train/batch_source.hpp): make a data::text_dataset of them.
ctdl::train::report train(ctdl::model<gpt>& net, const std::vector<int>& tokens, ctdl::rng& g) {
    ctdl::optim::adamw opt{net};
    return ctdl::train::run<2, 8>(net, opt, tokens, g, ctdl::train::options{});
}
int main() {}
