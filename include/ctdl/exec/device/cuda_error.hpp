#pragma once
// Errors from the CUDA runtime and cuBLASLt become ctdl::error, naming the call and the
// status: "ctdl: cublasLtMatmul(...) failed: CUBLAS_STATUS_NOT_SUPPORTED (the functionality
// requested is not supported)".
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "../../core/error.hpp"

namespace ctdl::device_cuda {

inline void check(cudaError_t status, const char* call) {
    if (status != cudaSuccess)
        throw error(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) +
                    ")");
}

inline void check(cublasStatus_t status, const char* call) {
    if (status != CUBLAS_STATUS_SUCCESS)
        throw error(std::string(call) + " failed: " + cublasLtGetStatusName(status) + " (" +
                    cublasLtGetStatusString(status) + ")");
}

}  // namespace ctdl::device_cuda

/// Runs a CUDA runtime or cuBLASLt call; throws ctdl::error naming it unless it succeeded.
#define CTDL_CUDA_CHECK(call) ::ctdl::device_cuda::check((call), #call)
