#pragma once
// The model of benchmarks/ttft's inference binaries: GPT-2 small's shape (vocab 50257,
// context 1024, width 768, 12 heads, 12 layers; 124 M parameters).
#include <ctdl/models/gpt2.hpp>

namespace ttft {
using gpt2_small = ctdl::models::gpt2<50257, 1024, 768, 12, 12>;
}  // namespace ttft
