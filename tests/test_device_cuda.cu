// tests/test_device.cpp compiled by nvcc: ctdl::device on CUDA (cuBLASLt GEMMs, Thrust
// kernels on the GPU) computes what the cpu policy computes.
#include "test_device.cpp"
