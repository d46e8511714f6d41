// Compiled for the baseline instruction set of the architecture (no -march=native).
#include "isa_model.hpp"
isa_result run_base() { return isa_work(); }
