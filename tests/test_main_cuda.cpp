// Catch2's main for the CUDA tests: without a GPU they exit with 77 before running
// anything, which ctest reports as skipped (SKIP_RETURN_CODE 77), not passed. Listing the
// tests (catch_discover_tests does, at build time) needs no GPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <string_view>

int main(int argc, char** argv) {
    bool listing = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        listing = listing || a.starts_with("--list") || a == "-l" || a == "-t" || a == "-h" || a == "--help";
    }
    if (!listing) {
        int devices = 0;
        const cudaError_t s = cudaGetDeviceCount(&devices);
        if (s != cudaSuccess || devices == 0) {
            std::printf("no CUDA device (%s): skipped\n", s != cudaSuccess ? cudaGetErrorName(s) : "none found");
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
