// Declarations of the fast CPU kernels. conv2d.cpp, attention.cpp and group_norm.cpp are
// compiled once per ISA into its own namespace; dispatch.cpp assembles the KernelTables.
#pragma once
#include "kernels/kernels.h"

#define FUSEDIFF_DECLARE_ISA_KERNELS(isa)                                                                  \
  namespace fusediff::kernels::isa {                                                                        \
  void pack_conv(const float* oihw, int out_c, int in_c, int kernel, ConvAlgorithm algorithm,              \
                 PackedConv* out);                                                                          \
  void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y, \
              ThreadPool& pool);                                                                            \
  int64_t attention_scratch_floats(const AttentionParams& p);                                              \
  void attention(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool); \
  int64_t group_norm_scratch_floats(const GroupNormParams& p);                                             \
  void group_norm(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool);    \
  }

// The low-precision kernels (conv2d_int8.cpp, conv2d_bf16.cpp) have ISA variants of their
// own: AVX-512 with VNNI and with BF16 need instructions plain AVX-512 CPUs lack.
#define FUSEDIFF_DECLARE_LOWP_KERNELS(isa)                                                                   \
  namespace fusediff::kernels::isa {                                                                          \
  void pack_conv_int8(const int8_t* q, const float* scale, int out_c, int in_c, int kernel, PackedConv* out); \
  void pack_conv_bf16(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);                  \
  int64_t lowp_conv_scratch_bytes(const Conv2dParams& p, Precision precision);                               \
  void conv2d_int8(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e,         \
                   float* y, void* scratch, ThreadPool& pool);                                               \
  void conv2d_bf16(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e,         \
                   float* y, void* scratch, ThreadPool& pool);                                               \
  }

FUSEDIFF_DECLARE_ISA_KERNELS(generic)
FUSEDIFF_DECLARE_LOWP_KERNELS(generic)
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
FUSEDIFF_DECLARE_ISA_KERNELS(avx2)
FUSEDIFF_DECLARE_ISA_KERNELS(avx512)
FUSEDIFF_DECLARE_LOWP_KERNELS(avx2)
FUSEDIFF_DECLARE_LOWP_KERNELS(avx512)
FUSEDIFF_DECLARE_LOWP_KERNELS(avx512_vnni)
FUSEDIFF_DECLARE_LOWP_KERNELS(avx512_bf16)
#endif
