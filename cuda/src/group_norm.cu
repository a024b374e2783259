// GroupNorm (+ ResNet scale-shift) (+ SiLU) over NHWC, as kernels/reference/group_norm.cpp:
//
//   for each image n and group g (channels c0 .. c0 + C/G):
//     mean = sum(x) / count,  var = sum((x - mean)^2) / count      (float64 sums)
//     y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c]
//     y = y * (1 + ss[n, c]) + ss[n, C + c]                         (scale_shift, if given)
//     y = silu(y)                                                    (if silu)
//
// One block per (group, image); the block walks the group's values three times (sum,
// centred sum of squares, write), like the reference's two-pass statistics.
#include "ops.h"

namespace fusediff::cuda {
namespace {

constexpr int kNormThreads = 256;

// Sum of `v` over the block (every thread gets the result).
__device__ double block_sum(double v, double* shared) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // `shared` may still be read from a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int i = 0; i < kNormThreads / 32; ++i) total += shared[i];
  return total;
}

__global__ void __launch_bounds__(kNormThreads) group_norm_kernel(fdc_group_norm_params p, const float* __restrict__ x,
                                                                 float* __restrict__ y) {
  __shared__ double partial[kNormThreads / 32];
  const int g = blockIdx.x, n = blockIdx.y;
  const int per_group = p.channels / p.groups;
  const int c0 = g * per_group;
  const int64_t count = p.pixels * per_group;
  const float* img = x + static_cast<int64_t>(n) * p.pixels * p.channels;
  float* out = y + static_cast<int64_t>(n) * p.pixels * p.channels;
  // Element e of the group: pixel e / per_group, channel c0 + e % per_group.
  auto at = [&](int64_t e) { return (e / per_group) * p.channels + c0 + e % per_group; };

  double s = 0.0;
  for (int64_t e = threadIdx.x; e < count; e += kNormThreads) s += img[at(e)];
  const double mean = block_sum(s, partial) / static_cast<double>(count);
  double q = 0.0;
  for (int64_t e = threadIdx.x; e < count; e += kNormThreads) {
    const double d = img[at(e)] - mean;
    q += d * d;
  }
  const double rstd = 1.0 / sqrt(block_sum(q, partial) / static_cast<double>(count) + p.eps);
  for (int64_t e = threadIdx.x; e < count; e += kNormThreads) {
    const int64_t i = at(e);
    const int c = c0 + static_cast<int>(e % per_group);
    double v = (img[i] - mean) * rstd * p.gamma[c] + p.beta[c];
    if (p.scale_shift) {
      const float* ss = p.scale_shift + n * p.scale_shift_stride;
      v = v * (1.0 + ss[c]) + ss[p.channels + c];
    }
    const float f = static_cast<float>(v);
    out[i] = p.silu ? f / (1.0f + expf(-f)) : f;
  }
}

}  // namespace

int group_norm(fdc_context* ctx, const fdc_group_norm_params& p, const float* x, float* y) {
  const dim3 grid(static_cast<unsigned>(p.groups), static_cast<unsigned>(p.batch));
  group_norm_kernel<<<grid, kNormThreads, 0, ctx->stream>>>(p, x, y);
  FDC_LAUNCHED("group_norm");
  return FDC_OK;
}

}  // namespace fusediff::cuda
