// expect: shapes_must_be_broadcastable<ctdl::shape<3, 2>, ctdl::shape<4> ?>(.|\n)*equal or 1
#include <ctdl/core/shape.hpp>
using bad = ctdl::broadcast_shape<ctdl::shape<3, 2>, ctdl::shape<4>>;
bad b;
int main() {}
