// A user's program: includes ctdl through its CMake package (installed or as a
// subdirectory) and uses the names users depend on: a model, a partly frozen type made
// with with_frozen, named parameters, a snapshot with metadata read back.
#include <ctdl/ctdl.hpp>

#include <cstdio>
#include <filesystem>

namespace nn = ctdl::nn;
using net_t = nn::sequential<nn::linear<3, 4>, nn::gelu, nn::linear<4, 2>>;

int main(int, char** argv) {
    ctdl::tensor<float, ctdl::shape<2, 3>> x(1.5f);
    float sum = 0;
    for (float v : x) sum += v;
    if (sum != 9.f) return 1;

    ctdl::model<net_t> net{ctdl::seed{1}};
    // beside the executable: each downstream build has its own folder
    const auto file = std::filesystem::path(argv[0]).parent_path() / "downstream.safetensors";
    ctdl::save(net, file, {{"note", "downstream"}});
    ctdl::model<ctdl::with_frozen<net_t, "0">> tuned;
    ctdl::load_into(tuned, file);
    if (ctdl::snapshot_metadata(file, "note") != "downstream") return 2;
    if (tuned.parameter("0.weight").trainable || tuned.parameter("2.weight").shape[1] != 4) return 3;
    if (!ctdl::equal(net.forward(x), tuned.forward(x))) return 4;
    std::filesystem::remove(file);
    std::puts("downstream ok");
    return 0;
}
