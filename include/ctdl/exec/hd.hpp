#pragma once
#include "isa.hpp"
// CTDL_HD marks functions and lambdas that kernels call on the device as well as on the
// host (__host__ __device__ under nvcc; nothing for a host compiler).
#if defined(__CUDACC__)
#define CTDL_HD __host__ __device__
#else
#define CTDL_HD
#endif
