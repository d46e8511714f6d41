// expect: reshape_must_keep_the_element_count<ctdl::shape<4, 6>, ctdl::shape<5, 5> ?>(.|\n)*same number of elements
#include <ctdl/core/tensor.hpp>
int main() {
    ctdl::tensor<float, ctdl::shape<4, 6>> x;
    auto y = x.reshape<ctdl::shape<5, 5>>();
    return static_cast<int>(y(0, 0));
}
