// Compiled with -march=native.
#include "isa_model.hpp"
isa_result run_native() { return isa_work(); }
