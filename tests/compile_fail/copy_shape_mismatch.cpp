// expect: copy_needs_equal_shapes<ctdl::shape<2, 3>, ctdl::shape<3, 2> ?>(.|\n)*shapes differ
#include <ctdl/core/tensor.hpp>
int main() {
    ctdl::tensor<float, ctdl::shape<2, 3>> a;
    ctdl::tensor<float, ctdl::shape<3, 2>> b;
    ctdl::copy(a, b);
}
