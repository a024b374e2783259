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
#include <vector>

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
  // A resampling folded into the read (the conv sees an in_h x in_w input; float
  // convolutions only):
  //   Upsample2x (diffusers' nearest 2x before a conv): x holds (in_h / 2) x (in_w / 2) pixels
  //     (in_h, in_w even) and input pixel (iy, ix) is x[iy / 2][ix / 2];
  //   AvgPool2x (a ResNet down block's 2x2 average before conv1): x holds 2 in_h x 2 in_w
  //     pixels and input pixel (iy, ix) is ((x[2iy][2ix] + x[2iy][2ix+1]) + (x[2iy+1][2ix] +
  //     x[2iy+1][2ix+1])) * 0.25, the sum avg_pool2x2 computes, in its order.
  enum class InputResample { None, Upsample2x, AvgPool2x } input_resample = InputResample::None;

  // Floats of one image of the tensor the conv reads: its input before a folded resampling.
  int64_t source_image_floats() const {
    const int64_t floats = static_cast<int64_t>(in_h) * in_w * in_c;
    if (input_resample == InputResample::Upsample2x) return floats / 4;
    if (input_resample == InputResample::AvgPool2x) return floats * 4;
    return floats;
  }
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

// The arithmetic a packed convolution runs in.
//   F32:  float32 weights and inputs (conv2d).
//   I8:   per-output-channel symmetric int8 weights w = scale[co] * q[co, ...], inputs
//         quantized per image (asymmetric, per tensor: min..max over 255 levels) as the
//         conv reads them, int32
//         accumulation, dequantize + epilogue in float (conv2d_int8).
//   BF16: bfloat16 weights and inputs (round to nearest even), float32 accumulation
//         (conv2d_bf16).
enum class Precision { F32, I8, BF16 };

// How a float32 convolution is computed by the fast tables (the reference table always runs
// the definition above, and packs for it whatever is asked):
//   Direct:      implicit GEMM over the taps (cpu/conv2d.cpp): any kernel, stride, padding.
//   Winograd2x2: minimal filtering F(2x2, 3x3) (cpu/conv2d_winograd.cpp): 3x3, stride 1, padding
//                1 ("same"), in and out channels multiples of 16; 2.25x fewer multiply-adds,
//                results within a few ulps of Direct.
enum class ConvAlgorithm { Direct, Winograd2x2 };

// Whether Winograd2x2 can compute a float conv of this shape.
bool winograd_applies(int kernel, int stride, int pad, int in_c, int out_c);
// The algorithm a float conv of this shape gets: Winograd2x2 where it applies and measured
// faster (in_c, out_c >= 32), unless FUSEDIFF_CONV=direct (read once per process).
ConvAlgorithm float_conv_algorithm(int kernel, int stride, int pad, int in_c, int out_c);

// Convolution weights in the layout a kernel table wants, packed once at load.
struct PackedConv {
  AlignedBuffer data;
  int out_c = 0, in_c = 0, kernel = 0;
  Precision precision = Precision::F32;
  ConvAlgorithm algorithm = ConvAlgorithm::Direct;  // F32 only
  // I8 only: scale[co] (float weight = scale * int8 weight) and wsum[co] = the sum of the
  // int8 weights of output channel co (folds the activations' zero point in the epilogue).
  std::vector<float> scale;
  std::vector<int32_t> wsum;
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
  // algorithm: float_conv_algorithm's choice (Winograd2x2 only where it applies).
  void (*pack_conv)(const float* oihw, int out_c, int in_c, int kernel, ConvAlgorithm algorithm, PackedConv* out);
  void (*conv2d)(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 ThreadPool& pool);
  // Floats of scratch memory attention needs for p (the executor plans it in its arena).
  int64_t (*attention_scratch_floats)(const AttentionParams& p);
  void (*attention)(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool);
  int64_t (*group_norm_scratch_floats)(const GroupNormParams& p);
  void (*group_norm)(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool);

  // Low-precision convolutions (conv2d_int8.cpp, conv2d_bf16.cpp), from their own ISA
  // variant: lowp_name is e.g. "avx512_vnni" while name (the float kernels) is "avx512".
  const char* lowp_name;
  // q: int8 weights in PyTorch order [out_c][in_c][k][k]; scale: out_c positive floats.
  void (*pack_conv_int8)(const int8_t* q, const float* scale, int out_c, int in_c, int kernel, PackedConv* out);
  // w: float weights [out_c][in_c][k][k], rounded to bfloat16 (nearest even) when packed.
  void (*pack_conv_bf16)(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);
  // Bytes of scratch conv2d_int8 / conv2d_bf16 need for p (the quantized or rounded copy of
  // the input); the executor plans them in its arena. 64-byte aligned scratch.
  int64_t (*lowp_conv_scratch_bytes)(const Conv2dParams& p, Precision precision);
  void (*conv2d_int8)(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                      void* scratch, ThreadPool& pool);
  void (*conv2d_bf16)(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                      void* scratch, ThreadPool& pool);
};

// Symmetric per-output-channel int8 quantization of float weights [out_c][per_channel]:
// scale[co] = max_i |w[co, i]| / 127 (1 where the channel is all zero), q = round(w / scale)
// (half away from zero), clamped to [-127, 127]. Shared by load-time quantization and the
// quantize command, so both give the same bytes.
void quantize_per_channel(const float* w, int out_c, int64_t per_channel, int8_t* q, float* scale);
// float -> bfloat16 bits, round to nearest even (NaN stays NaN), as vcvtne2ps2bf16 does.
uint16_t float_to_bf16(float x);

// The plain implementations (reference/).
const KernelTable& reference_kernels();
// The best table for this CPU, or the one FUSEDIFF_CPU names (avx512_bf16, avx512_vnni,
// avx512, avx2, generic, reference: the avx512_* names use the avx512 float kernels and
// that ISA's int8/bf16 kernels; plain avx512 is AVX-512 without VNNI); an unknown or
// unavailable name gives Error(Argument).
const KernelTable& select_kernels();
const KernelTable& kernels_by_name(const std::string& name);

}  // namespace fusediff::kernels
