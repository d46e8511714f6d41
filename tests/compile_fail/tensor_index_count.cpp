// expect: tensor_index_count_must_equal_rank<ctdl::shape<2, 3>, 1>(.|\n)*one index per axis
#include <ctdl/core/tensor.hpp>
int main() {
    ctdl::tensor<float, ctdl::shape<2, 3>> x;
    return static_cast<int>(x(1));
}
