// The CPU kernel layer: what the U-Net executor calls, independent of ISA.
//
// Activations are NHWC float32 ([batch][height][width][channels], row-major) inside the
// engine: a 3x3 convolution then reads, for each of its nine taps, one contiguous run of
// input channels (implicit GEMM, no im2col buffer).
//
// Convolutions, attention and GroupNorm (+ SiLU) carry the time, so they come in a plain
// reference version (the oracle for tests and FUSEDIFF_CPU=reference) and fast versions
// chosen at run time per ISA through KernelTable. The ops that only move bytes (resampling,
// concat, layout changes) have one plain, threaded implementation in elementwise.h.
#pragma once
#include <cstdint>
#include <string>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"

namespace fusediff::kernels {

// y[n, oy, ox, co] = sum_{ky,kx,ci} x[n, oy*stride - pad_top + ky, ox*stride - pad_left + kx, ci]
//                                   * w[co, ci, ky, kx]
// where x is zero outside the input, or, with `circular`, wraps around (x[n, iy mod H,
// ix mod W, ci]: padding_mode "circular", for seamlessly tiling outputs).
struct Conv2dParams {
  int batch = 1;
  int in_h = 0, in_w = 0, in_c = 0;
  int out_h = 0, out_w = 0, out_c = 0;
  int kernel = 3;  // 1 or 3
  int stride = 1;  // 1 or 2
  int pad_top = 0, pad_left = 0;
  bool circular = false;
};

// Applied to each output value before its single store:
//   y = (acc + bias[co] + batch_bias[n * batch_bias_stride + co] + residual[n,oy,ox,co]) * output_scale
// which covers a conv bias, the per-image time-embedding add of a ResNet block, the residual
// add and diffusers' output_scale_factor / rescale_output_factor (as its reciprocal).
struct ConvEpilogue {
  const float* bias = nullptr;
  const float* batch_bias = nullptr;
  int64_t batch_bias_stride = 0;
  const float* residual = nullptr;
  float output_scale = 1.0f;
};

// Convolution weights in the layout a kernel table wants, packed once at load.
struct PackedConv {
  AlignedBuffer data;
  int out_c = 0, in_c = 0, kernel = 0;
};

// softmax(Q K^T / sqrt(head_dim)) V per batch item and head.
// qkv: [batch][tokens][3 * channels] (all queries' features, then keys', then values' per token);
// out: [batch][tokens][channels]; head k owns features [k * head_dim, (k + 1) * head_dim).
struct AttentionParams {
  int batch = 1, tokens = 0, channels = 0, heads = 1;
};

// GroupNorm over [batch][pixels][channels] with `groups` groups of consecutive channels,
// statistics (mean, biased variance) per (image, group):
//   y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]
// then, if scale_shift is set (ResNet "scale_shift" time conditioning),
//   y = y * (1 + scale_shift[n*stride + c]) + scale_shift[n*stride + channels + c]
// then SiLU if `silu`.
struct GroupNormParams {
  int batch = 1;
  int64_t pixels = 0;
  int channels = 0;
  int groups = 1;
  float eps = 1e-5f;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  const float* scale_shift = nullptr;
  int64_t scale_shift_stride = 0;
  bool silu = false;
};

struct KernelTable {
  const char* name;
  void (*pack_conv)(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);
  void (*conv2d)(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 ThreadPool& pool);
  // Floats of scratch memory attention needs for p (the executor plans it in its arena).
  int64_t (*attention_scratch_floats)(const AttentionParams& p);
  void (*attention)(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool);
  int64_t (*group_norm_scratch_floats)(const GroupNormParams& p);
  void (*group_norm)(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool);
};

// The plain implementations (reference/).
const KernelTable& reference_kernels();
// The best table for this CPU, or the one FUSEDIFF_CPU names (avx512, avx2, generic,
// reference); an unknown or unavailable name gives Error(Argument).
const KernelTable& select_kernels();
const KernelTable& kernels_by_name(const std::string& name);

}  // namespace fusediff::kernels
