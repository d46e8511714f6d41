// gpt2_weights FILE: writes random weights of ttft::gpt2_small (transformers' initialisation,
// seed 1) to FILE with ctdl::save (with its checksum, which the inference binaries verify).
#include <ctdl/ctdl.hpp>

#include <cstdio>
#include <exception>

#include "gpt2_small.hpp"

int main(int argc, char** argv) try {
    if (argc != 2) {
        std::fprintf(stderr, "usage: gpt2_weights FILE\n");
        return 2;
    }
    const ctdl::model<ctdl::frozen<ttft::gpt2_small>> net{ctdl::seed{1}};
    ctdl::save(net, argv[1]);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "gpt2_weights: %s\n", e.what());
    return 1;
}
