#pragma once
// ctdl::optim: optimizers (sgd, adam, adamw), gradient clipping and learning-rate schedules.
// Every optimizer updates the trainable ranges of a model's flat buffers in one fused pass:
// its update functor, written once, run by Exec::for_each_index on every policy (sweep.hpp).
#include "adam.hpp"
#include "clip.hpp"
#include "schedule.hpp"
#include "segment.hpp"
#include "sgd.hpp"
#include "state.hpp"
#include "sweep.hpp"
