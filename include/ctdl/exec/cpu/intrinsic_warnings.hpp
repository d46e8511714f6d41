#pragma once
// GCC 12 reports the deliberately undefined pass-through operand inside AVX-512 interleave,
// shuffle and lane-reduction intrinsics as (maybe-)uninitialized; it is never read. Code that
// uses them sits between these two macros.
#if defined(__GNUC__) && !defined(__clang__)
#define CTDL_INTRINSIC_WARNINGS_OFF                                  \
    _Pragma("GCC diagnostic push")                                   \
    _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")      \
    _Pragma("GCC diagnostic ignored \"-Wuninitialized\"")
#define CTDL_INTRINSIC_WARNINGS_ON _Pragma("GCC diagnostic pop")
#else
#define CTDL_INTRINSIC_WARNINGS_OFF
#define CTDL_INTRINSIC_WARNINGS_ON
#endif
