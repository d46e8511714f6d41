#pragma once
// nn::layer_norm<N> lives with its op: ops/layer_norm/.
#include "../ops/layer_norm/layer.hpp"
