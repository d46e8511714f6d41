#pragma once
// The safetensors format: ctdl::safetensors::read / file (validated reading) and
// ctdl::safetensors::writer (atomic writing). See the headers below for details.
#include "safetensors_format.hpp"
#include "safetensors_reader.hpp"
#include "safetensors_writer.hpp"
