#pragma once
// nn::embedding and nn::position_embedding live with their ops: ops/embedding/.
#include "../ops/embedding/layer.hpp"
