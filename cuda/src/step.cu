// The sampler-step kernels of kernels/step.h on the device, one thread per element, in
// float64 as kernels/reference/step.cpp (same order of operations; built with --fmad=false
// so that no multiply-add is contracted):
//
//   x0  = clip(ax*x + am*m + az*z)                     (terms with a zero coefficient skipped)
//   out = b0*x0 + bx*x + bm*m + by*y + sigma_z*z       sigma_z = bz, bz*sqrt(v) or bz*exp(e0 + e1*v)
//   m   = m_u + w (m_c - m_u) when guided; v = the variance half of a 2C-channel output
//   z   = the tensor, or philox::normal_at(seed[b], stream, i) (core/philox.h, shared with the CPU)
#include "core/philox.h"
#include "ops.h"

namespace fusediff::cuda {
namespace {

enum Coef { AX, AM, AZ, BX, BM, B0, BZ, BY, E0, E1 };

struct StepView {
  fdc_affine_step_params p;
  StepCoefficients c;
  __device__ double coef(int j, int64_t b) const { return (c.present >> j) & 1u ? c.values[j * p.batch + b] : 0.0; }
  __device__ double pred(int64_t b, int64_t i, int64_t per_item) const {
    const int64_t stride = p.m_channels * p.pixels;
    if (!p.m) return 0.0;
    if (!p.guided) return p.m[b * stride + i];
    const double u = p.m[b * stride + i], cnd = p.m[(b + p.batch) * stride + i];
    return u + p.guidance_scale * (cnd - u);
  }
  __device__ double var(int64_t b, int64_t i, int64_t per_item) const {
    const int64_t stride = p.m_channels * p.pixels;
    return p.m[(p.guided ? b + p.batch : b) * stride + per_item + i];
  }
  __device__ double noise(int64_t b, int64_t i, int64_t per_item) const {
    if (p.z) return p.z[b * per_item + i];
    if (c.seeds) return philox::normal_at(c.seeds[b], p.stream, static_cast<uint64_t>(i));
    return 0.0;
  }
};

__global__ void affine_step_kernel(StepView s, const float* __restrict__ x, float* __restrict__ out,
                                   float* __restrict__ x0_out) {
  const fdc_affine_step_params& p = s.p;
  const int64_t per_item = p.channels * p.pixels;
  const int64_t n = p.batch * per_item;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = e / per_item, i = e % per_item;
    double a = 0;
    if (s.coef(AX, b) != 0) a += s.coef(AX, b) * x[e];
    if (s.coef(AM, b) != 0) a += s.coef(AM, b) * s.pred(b, i, per_item);
    if (s.coef(AZ, b) != 0) a += s.coef(AZ, b) * s.noise(b, i, per_item);
    if (p.clamp == FDC_CLAMP_RANGE) a = fmin(fmax(a, p.clamp_lo), p.clamp_hi);
    double r = s.coef(B0, b) * a;
    if (s.coef(BX, b) != 0) r += s.coef(BX, b) * x[e];
    if (s.coef(BM, b) != 0) r += s.coef(BM, b) * s.pred(b, i, per_item);
    if (s.coef(BY, b) != 0) r += s.coef(BY, b) * p.y[e];
    if (s.coef(BZ, b) != 0) {
      double sigma = s.coef(BZ, b);
      if (p.noise_scale == FDC_NOISE_SQRTV) sigma *= sqrt(s.var(b, i, per_item));
      if (p.noise_scale == FDC_NOISE_EXPV) sigma *= exp(s.coef(E0, b) + s.coef(E1, b) * s.var(b, i, per_item));
      r += sigma * s.noise(b, i, per_item);
    }
    if (x0_out) x0_out[e] = static_cast<float>(a);
    out[e] = static_cast<float>(r);
  }
}

__global__ void philox_normal_kernel(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds,
                                     uint64_t stream) {
  const int64_t n = batch * per_item;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[e] = philox::normal_at(seeds[e / per_item], stream, static_cast<uint64_t>(e % per_item));
}

}  // namespace

int affine_step(fdc_context* ctx, const fdc_affine_step_params& p, const StepCoefficients& c, const float* x, float* out,
                float* x0_out) {
  affine_step_kernel<<<grid_for(p.batch * p.channels * p.pixels), kThreads, 0, ctx->stream>>>(StepView{p, c}, x, out,
                                                                                              x0_out);
  FDC_LAUNCHED("affine_step");
  return FDC_OK;
}

int philox_normal(fdc_context* ctx, float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream) {
  philox_normal_kernel<<<grid_for(batch * per_item), kThreads, 0, ctx->stream>>>(out, batch, per_item, seeds, stream);
  FDC_LAUNCHED("philox_normal");
  return FDC_OK;
}

}  // namespace fusediff::cuda
