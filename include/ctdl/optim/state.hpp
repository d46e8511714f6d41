#pragma once
// named_state: one optimizer state buffer, by name, for checkpoints.
//
// Every optimizer has state_tensors(): its buffers as named spans in the gradient layout
// (gradient_count elements each, element i belongs to gradient i; PyTorch's names:
// "momentum_buffer", "exp_avg", "exp_avg_sq"), and step_count() / set_step_count(). To
// restore a checkpoint, copy the saved values into the spans of state_tensors() and call
// set_step_count(saved) -- the next step() then continues bitwise as if never interrupted.
#include <span>
#include <string_view>

namespace ctdl::optim {

template <class T>
struct named_state {
    std::string_view name;
    std::span<T> values;
};

}  // namespace ctdl::optim
