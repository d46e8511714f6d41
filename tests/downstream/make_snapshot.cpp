// Writes the snapshot the downstream inference binaries are built from: tiny_gpt, seed 3.
#include <ctdl/ctdl.hpp>

#include "tiny.hpp"

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    ctdl::model<downstream::tiny_gpt> net{ctdl::seed{3}};
    ctdl::save(net, argv[1]);
    return 0;
}
