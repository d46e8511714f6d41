// tests/test_device_train.cpp compiled by nvcc: training (losses, optimizers, clipping,
// train_step, snapshots) with ctdl::device on CUDA.
#include "test_device_train.cpp"
