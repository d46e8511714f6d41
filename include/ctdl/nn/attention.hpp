#pragma once
// nn::causal_self_attention<D, Heads> lives with its op: ops/attention/.
#include "../ops/attention/layer.hpp"
