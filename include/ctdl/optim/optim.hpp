#pragma once
// ctdl::optim: optimizers (sgd, adam, adamw), gradient clipping and learning-rate schedules.
// Every optimizer updates the trainable ranges of a model's flat buffers in one fused pass,
// on the cpu policy with its own loops, on the device policy through Exec::for_each_index.
#include "adam.hpp"
#include "clip.hpp"
#include "policy.hpp"
#include "schedule.hpp"
#include "segment.hpp"
#include "sgd.hpp"
#include "state.hpp"
