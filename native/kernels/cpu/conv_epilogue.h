// The convolution epilogue of kernels.h, shared by the float (conv2d.cpp) and low-precision
// (conv2d_lowp.h) convolutions:
//
//   y[pix, c] = (s[c] + bias[c] + batch_bias[n, c] + residual[pix, c]) * output_scale
//
// applied one vector of kVec output channels [c0, c0 + kVec) at a time. A register tile
// stores several pixels of the same channels, so the per-channel terms are loaded once per
// column (EpilogueColumn) and reused for each of its pixels. Whole vectors run in SIMD
// registers; the last vector of a layer whose channel count is not a multiple of kVec
// (conv_out's 3 or 4 channels) runs lane by lane, since its tensors end at out_c. Both paths
// add in the same order, so where a channel lands does not change its bits.
#pragma once
#include <algorithm>
#include <cstring>

#include "kernels/cpu/vec.h"
#include "kernels/kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {

struct EpilogueColumn {
  int n, c0;
  bool whole;  // all kVec channels exist
  vec bias, batch_bias;
};

inline EpilogueColumn epilogue_column(const ConvEpilogue& e, int n, int out_c, int c0) {
  EpilogueColumn col{n, c0, c0 + kVec <= out_c, vec{}, vec{}};
  if (col.whole) {
    if (e.bias) col.bias = load(e.bias + c0);
    if (e.batch_bias) col.batch_bias = load(e.batch_bias + n * e.batch_bias_stride + c0);
  }
  return col;
}

inline void store_with_epilogue(const ConvEpilogue& e, const EpilogueColumn& col, int64_t pix, int out_c, vec s,
                                float* y) {
  const int64_t at = pix * out_c + col.c0;
  if (col.whole) {
    if (e.bias) s += col.bias;
    if (e.batch_bias) s += col.batch_bias;
    if (e.residual) s += load(e.residual + at);
    store(y + at, s * e.output_scale);
    return;
  }
  float lane[kVec];
  std::memcpy(lane, &s, sizeof(lane));
  for (int i = 0; i < out_c - col.c0; ++i) {
    const int c = col.c0 + i;
    float v = lane[i];
    if (e.bias) v += e.bias[c];
    if (e.batch_bias) v += e.batch_bias[col.n * e.batch_bias_stride + c];
    if (e.residual) v += e.residual[at + i];
    y[at + i] = v * e.output_scale;
  }
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
