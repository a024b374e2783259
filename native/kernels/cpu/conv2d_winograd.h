// The Winograd F(2x2, 3x3) convolution (conv2d_winograd.cpp), which conv2d.cpp's pack_conv and
// conv2d hand PackedConv::algorithm == Winograd2x2 to. Declared in the ISA's own namespace.
#pragma once
#include "kernels/kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {

// U = G g G^T of every (ci, co) pair, as [xi][panel of 16 output channels][ci][16]; out_c and
// in_c multiples of 16 (winograd_applies).
void pack_conv_winograd(const float* oihw, int out_c, int in_c, PackedConv* out);
// y = conv(x) through the epilogue, for p a 3x3, stride-1, padding-1 conv (Internal error otherwise).
void conv2d_winograd(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                     ThreadPool& pool);

}  // namespace fusediff::kernels::FUSEDIFF_ISA
