#pragma once
// nn::softmax lives with its op: ops/softmax/.
#include "../ops/softmax/layer.hpp"
