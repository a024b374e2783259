// The kernels' launchers, one family per .cu file; abi.cpp validates arguments and calls these.
// Each returns an fdc_status (launch errors included); none synchronises.
#pragma once
#include "common.h"

namespace fusediff::cuda {

// conv2d.cu
int conv2d(fdc_context* ctx, const fdc_conv2d_params& p, const float* x, const void* w, int math, const fdc_epilogue& e,
           float* y);
// conv2d_int8.cu
int64_t conv2d_int8_scratch_bytes(const fdc_conv2d_params& p);
int conv2d_int8(fdc_context* ctx, const fdc_conv2d_params& p, const float* x, const void* packed, const fdc_epilogue& e,
                float* y, void* scratch);
// group_norm.cu
int group_norm(fdc_context* ctx, const fdc_group_norm_params& p, const float* x, float* y);
// attention.cu
int64_t attention_scratch_bytes(const fdc_attention_params& p);
int attention(fdc_context* ctx, const fdc_attention_params& p, const float* qkv, float* out, void* scratch);
// elementwise.cu
int nchw_to_nhwc(fdc_context* ctx, const float* x, int batch, int channels, int height, int width, bool center,
                 float* y);
int nhwc_to_nchw(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, const float* divisor,
                 float* y);
int silu(fdc_context* ctx, const float* x, int64_t count, float* y);
int add(fdc_context* ctx, const float* x, int64_t count, float* y);
int upsample_nearest2x(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, float* y);
int avg_pool2x2(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, float* y);
int concat_channels(fdc_context* ctx, const float* a, int ca, const float* b, int cb, int64_t pixels, float* y);
// step.cu: coefficients and seeds already on the device (see StepCoefficients).
struct StepCoefficients {
  const double* values = nullptr;  // [10][batch]: ax am az bx bm b0 bz by e0 e1
  unsigned present = 0;            // bit j: array j was given (else it reads as 0)
  const uint64_t* seeds = nullptr; // [batch] or null
};
int affine_step(fdc_context* ctx, const fdc_affine_step_params& p, const StepCoefficients& c, const float* x, float* out,
                float* x0_out);
// Langevin: `device` holds [score_scale b][alpha b][seeds b][norms 2b][eps b] (staging).
int langevin_step(fdc_context* ctx, const fdc_langevin_params& p, const double* device, bool has_alpha, bool has_seeds,
                  const float* x, float* out, float* mean_out);
int philox_normal(fdc_context* ctx, float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream);

}  // namespace fusediff::cuda
