// expect: matmul_inner_extents_must_match<ctdl::shape<64, 256>, ctdl::shape<128, 10> ?>(.|\n)*inner extents differ
#include <ctdl/core/shape.hpp>
using bad = ctdl::matmul_shape<ctdl::shape<64, 256>, ctdl::shape<128, 10>>;
bad b;
int main() {}
