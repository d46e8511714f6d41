#pragma once
// named_state: one optimizer state buffer, by name, for checkpoints.
//
// Every optimizer has state_tensors(): its buffers as named spans in the gradient layout
// (gradient_count elements each, element i belongs to gradient i; PyTorch's names:
// "momentum_buffer", "exp_avg", "exp_avg_sq"), and step_count() / set_step_count(). To
// restore a checkpoint, copy the saved values into the spans of state_tensors() and call
// set_step_count(saved) -- the next step() then continues bitwise as if never interrupted.
//
// The spans point into the model's memory. For a model whose memory the host cannot read
// (ctdl::device), copy through state_to_host(opt) and state_from_host(opt, name, values),
// which work for every policy.
#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "sweep.hpp"

namespace ctdl::optim {

template <class T>
struct named_state {
    std::string_view name;
    std::span<T> values;
};

/// The optimizer's state buffers copied to host memory, by name, in state_tensors() order.
template <class Optimizer>
std::vector<std::pair<std::string, std::vector<typename Optimizer::value_type>>> state_to_host(const Optimizer& opt) {
    using Model = typename Optimizer::model_type;
    using T = typename Optimizer::value_type;
    std::vector<std::pair<std::string, std::vector<T>>> out;
    for (const auto& s : opt.state_tensors()) {
        std::vector<T> values(s.values.size());
        if constexpr (detail::host_model<Model>)
            std::copy(s.values.begin(), s.values.end(), values.begin());
        else
            Model::exec_type::copy_to_host(s.values.data(), values.data(), values.size());
        out.emplace_back(std::string(s.name), std::move(values));
    }
    return out;
}

/// Copies host values into the optimizer's state buffer `name`; throws ctdl::error when the
/// optimizer has no such buffer or the sizes differ.
template <class Optimizer>
void state_from_host(Optimizer& opt, std::string_view name, std::span<const typename Optimizer::value_type> values) {
    using Model = typename Optimizer::model_type;
    for (const auto& s : opt.state_tensors()) {
        if (s.name != name) continue;
        if (s.values.size() != values.size())
            throw error("optimizer state \"" + std::string(name) + "\": expected " + std::to_string(s.values.size()) +
                        " values, got " + std::to_string(values.size()));
        if constexpr (detail::host_model<Model>)
            std::copy(values.begin(), values.end(), s.values.begin());
        else
            Model::exec_type::copy_from_host(values.data(), s.values.data(), values.size());
        return;
    }
    throw error("optimizer state \"" + std::string(name) + "\": this optimizer has no such buffer");
}

}  // namespace ctdl::optim
