#pragma once
// ctdl: compile-time deep learning. The umbrella header.
#include "core/error.hpp"
#include "core/shape.hpp"
#include "core/tensor.hpp"
#include "exec/cpu.hpp"
#include "exec/pass_count.hpp"
#include "exec/thread_pool.hpp"
