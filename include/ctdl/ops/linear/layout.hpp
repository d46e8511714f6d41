#pragma once
// How a linear layer stores its weight.
namespace ctdl::nn {

/// out_in: [Out, In], torch.nn.Linear's layout, y = x Wᵀ + b.
/// in_out: [In, Out], the layout of transformers' Conv1D (GPT-2), y = x W + b.
enum class weight_layout { out_in, in_out };

}  // namespace ctdl::nn
