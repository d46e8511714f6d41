#pragma once
// The model type of the downstream inference binary (ctdl_add_inference_binary's HEADER).
#include <ctdl/models/gpt.hpp>

namespace downstream {
struct tiny_gpt : ctdl::models::gpt<20, 8, 16, 2, 1> {};
}  // namespace downstream
