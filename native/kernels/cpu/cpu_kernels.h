// Declarations of the fast CPU kernels. conv2d.cpp, attention.cpp and group_norm.cpp are
// compiled once per ISA into its own namespace; dispatch.cpp assembles the KernelTables.
#pragma once
#include "kernels/kernels.h"

#define FUSEDIFF_DECLARE_ISA_KERNELS(isa)                                                                  \
  namespace fusediff::kernels::isa {                                                                        \
  void pack_conv(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);                      \
  void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y, \
              ThreadPool& pool);                                                                            \
  int64_t attention_scratch_floats(const AttentionParams& p);                                              \
  void attention(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool); \
  int64_t group_norm_scratch_floats(const GroupNormParams& p);                                             \
  void group_norm(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool);    \
  }

FUSEDIFF_DECLARE_ISA_KERNELS(generic)
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
FUSEDIFF_DECLARE_ISA_KERNELS(avx2)
FUSEDIFF_DECLARE_ISA_KERNELS(avx512)
#endif
