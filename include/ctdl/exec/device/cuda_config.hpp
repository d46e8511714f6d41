#pragma once
// CTDL_DEVICE_CUDA: 1 when ctdl::device runs on CUDA (nvcc, THRUST_DEVICE_SYSTEM = CUDA),
// where its GEMMs go to cuBLASLt; 0 for Thrust's host systems (OMP, CPP) and host compilers.
#include <thrust/detail/config.h>

#if defined(__CUDACC__) && THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#define CTDL_DEVICE_CUDA 1
#else
#define CTDL_DEVICE_CUDA 0
#endif
