#pragma once
// ctdl::loss: losses as function objects. Each has operator()(prediction, target) -> mean
// loss and forward_backward(prediction, target, dprediction) -> mean loss with the gradient
// written in the same pass, on any execution policy (all of a call's tensors under the same one).
#include "binary_cross_entropy.hpp"
#include "cross_entropy.hpp"
#include "mse.hpp"
