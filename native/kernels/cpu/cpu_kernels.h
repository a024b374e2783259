// Declarations of the fast CPU kernels. conv2d.cpp is compiled once per ISA into its own
// namespace; dispatch.cpp assembles the KernelTables from them.
#pragma once
#include "kernels/kernels.h"

#define FUSEDIFF_DECLARE_CONV_KERNELS(isa)                                                                  \
  namespace fusediff::kernels::isa {                                                                        \
  void pack_conv(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);                      \
  void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y, \
              ThreadPool& pool);                                                                            \
  }

FUSEDIFF_DECLARE_CONV_KERNELS(generic)
#if defined(FUSEDIFF_HAVE_X86_KERNELS)
FUSEDIFF_DECLARE_CONV_KERNELS(avx2)
FUSEDIFF_DECLARE_CONV_KERNELS(avx512)
#endif

namespace fusediff::kernels::cpu {
// Attention split over (batch, head, blocks of queries) across the pool.
void attention(const AttentionParams& p, const float* qkv, float* out, ThreadPool& pool);
}  // namespace fusediff::kernels::cpu
