#pragma once
// The instruction set the host code of this translation unit is compiled for, as the name
// of an inline namespace that holds everything whose machine code depends on it: the cpu
// policy (ctdl::cpu), its kernels (cpu_kernels), every op (ops) and the elementwise math
// (math). Two translation units built for different instruction sets (say one with
// -march=native and one without) therefore instantiate differently named functions and
// types, instead of two different definitions of one name that the linker would merge at
// random (an ODR violation: AVX-512 code run where only SSE2 exists, or a struct cpu with
// other members). Users still write ctdl::cpu, ctdl::model<A>; a model built in one unit
// is another type than the same model built in the other, so passing one between them is
// a link error rather than a silent mismatch. Under nvcc the name is fixed (its host and
// device passes must agree on every mangled name).
#if defined(__CUDACC__)
#define CTDL_ISA_NS isa_cuda
#elif defined(__AVX512F__)
#define CTDL_ISA_NS isa_avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define CTDL_ISA_NS isa_avx2_fma
#elif defined(__AVX2__)
#define CTDL_ISA_NS isa_avx2
#elif defined(__AVX__) && defined(__FMA__)
#define CTDL_ISA_NS isa_avx_fma
#elif defined(__AVX__)
#define CTDL_ISA_NS isa_avx
#elif defined(__ARM_NEON)
#define CTDL_ISA_NS isa_neon
#elif defined(__FMA__)
#define CTDL_ISA_NS isa_fma
#else
#define CTDL_ISA_NS isa_base
#endif
