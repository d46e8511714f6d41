#pragma once
// The pretraining example's model type, shared with examples/infer (which is built for
// exactly this type by ctdl_add_inference_binary).
#include <cstddef>

#include <ctdl/models/gpt.hpp>

namespace examples {

inline constexpr std::size_t pretrain_vocab = 1024, pretrain_context = 64;
/// vocab 96 (the story corpus's characters fit), context 64, width 128, 4 heads, 4 blocks, MLP 512.
struct pretrain_gpt : ctdl::models::gpt<pretrain_vocab, pretrain_context, 128, 4, 4, 512> {};

}  // namespace examples
