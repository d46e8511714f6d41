#pragma once
// nn::linear<In, Out, Bias> lives with its op: ops/linear/.
#include "../ops/linear/layer.hpp"
