#pragma once
// parameter_info: one named tensor of a model's flat parameter buffer.
//
// A model lists its parameters in PyTorch state_dict order and naming ("0.weight",
// "0.bias", "2.weight", ...) with PyTorch layouts (a linear weight is [out, in]), so a
// snapshot written by ctdl loads into the equivalent PyTorch module and back.
#include <cstddef>
#include <string>
#include <vector>

namespace ctdl {

struct parameter_info {
    std::string name;                ///< state_dict name, e.g. "2.bias"
    std::vector<std::size_t> shape;  ///< PyTorch layout, e.g. {out, in} for a linear weight
    std::size_t offset = 0;          ///< into the model's flat parameter buffer, in elements
    std::size_t size = 0;            ///< product of shape
    bool trainable = true;           ///< false inside frozen<...>
};

}  // namespace ctdl
