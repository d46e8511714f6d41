// A user's program: includes ctdl through its CMake package and uses a tensor.
#include <ctdl/ctdl.hpp>

#include <cstdio>

int main() {
    ctdl::tensor<float, ctdl::shape<2, 3>> x(1.5f);
    float sum = 0;
    for (float v : x) sum += v;
    if (sum != 9.f) return 1;
    std::puts("downstream ok");
    return 0;
}
