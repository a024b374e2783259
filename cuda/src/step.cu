// The sampler-step kernels of kernels/step.h on the device, one thread per element, in
// float64 as kernels/reference/step.cpp (same order of operations; built with --fmad=false
// so that no multiply-add is contracted):
//
//   x0  = clip(ax*x + am*m + az*z)                     (terms with a zero coefficient skipped)
//   out = b0*x0 + bx*x + bm*m + by*y + sigma_z*z       sigma_z = bz, bz*sqrt(v) or bz*exp(e0 + e1*v)
//   m   = m_u + w (m_c - m_u) when guided; v = the variance half of a 2C-channel output
//   z   = the tensor, or philox::normal_at(seed[b], stream, i) (core/philox.h, shared with the CPU)
//
// The Langevin corrector (Song et al. 2021), in three kernels: per-image norms (one block per
// image, float64 sums), the step sizes (one thread, in the reference's order), the update:
//   |s_b|^2 = sum (k_b m)^2, |z_b|^2 = sum z^2;  eps_b = 2 alpha_b (snr |z_b| / |s_b|)^2
//   mean = x + eps_b k_b m;  out = mean + sqrt(2 eps_b) z
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

// --- Langevin --------------------------------------------------------------------------------
struct LangevinView {
  fdc_langevin_params p;
  const double* score_scale;
  const double* alpha;  // null: 1
  const uint64_t* seeds;
  double* norms;  // [b][2]: |score|^2, |z|^2
  double* eps;    // [b]
  __device__ double pred(int64_t b, int64_t i, int64_t per_item) const {
    if (!p.guided) return p.m[b * per_item + i];
    const double u = p.m[b * per_item + i], cnd = p.m[(b + p.batch) * per_item + i];
    return u + p.guidance_scale * (cnd - u);
  }
  __device__ double noise(int64_t b, int64_t i, int64_t per_item) const {
    if (p.z) return p.z[b * per_item + i];
    return philox::normal_at(seeds[b], p.stream, static_cast<uint64_t>(i));
  }
};

constexpr int kNormThreads = 256;
__global__ void __launch_bounds__(kNormThreads) langevin_norms(LangevinView v) {
  __shared__ double part[2][kNormThreads / 32];
  const int64_t b = blockIdx.x, per_item = v.p.channels * v.p.pixels;
  double sm = 0, sz = 0;
  for (int64_t i = threadIdx.x; i < per_item; i += kNormThreads) {
    const double s = v.score_scale[b] * v.pred(b, i, per_item), n = v.noise(b, i, per_item);
    sm += s * s;
    sz += n * n;
  }
  for (int o = 16; o > 0; o >>= 1) {
    sm += __shfl_xor_sync(0xffffffffu, sm, o);
    sz += __shfl_xor_sync(0xffffffffu, sz, o);
  }
  if (threadIdx.x % 32 == 0) part[0][threadIdx.x / 32] = sm, part[1][threadIdx.x / 32] = sz;
  __syncthreads();
  if (threadIdx.x == 0) {
    double a = 0, c = 0;
    for (int w = 0; w < kNormThreads / 32; ++w) a += part[0][w], c += part[1][w];
    v.norms[2 * b] = a;
    v.norms[2 * b + 1] = c;
  }
}

// eps_b in the reference's order (kernels/reference/step.cpp).
__global__ void langevin_step_sizes(LangevinView v) {
  const int64_t B = v.p.batch;
  double gm = 0, qm = 0;
  for (int64_t b = 0; b < B; ++b) gm += sqrt(v.norms[2 * b]) / B, qm += sqrt(v.norms[2 * b + 1]) / B;
  for (int64_t b = 0; b < B; ++b) {
    const double g = v.p.batch_mean_norms ? gm : sqrt(v.norms[2 * b]);
    const double q = v.p.batch_mean_norms ? qm : sqrt(v.norms[2 * b + 1]);
    const double r = v.p.snr * q / g;
    v.eps[b] = g > 0 ? 2.0 * (v.alpha ? v.alpha[b] : 1.0) * (r * r) : 0.0;
  }
}

__global__ void langevin_update(LangevinView v, const float* __restrict__ x, float* __restrict__ out,
                                float* __restrict__ mean_out) {
  const int64_t per_item = v.p.channels * v.p.pixels, n = v.p.batch * per_item;
  for (int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = e / per_item, i = e % per_item;
    const double eps = v.eps[b];
    const double mean = x[e] + eps * v.score_scale[b] * v.pred(b, i, per_item);
    if (mean_out) mean_out[e] = static_cast<float>(mean);
    out[e] = static_cast<float>(mean + sqrt(2.0 * eps) * v.noise(b, i, per_item));
  }
}

}  // namespace

int langevin_step(fdc_context* ctx, const fdc_langevin_params& p, const double* device, bool has_alpha, bool has_seeds,
                  const float* x, float* out, float* mean_out) {
  const int64_t B = p.batch;
  LangevinView v{p, device, has_alpha ? device + B : nullptr,
                 has_seeds ? reinterpret_cast<const uint64_t*>(device + 2 * B) : nullptr,
                 const_cast<double*>(device + 3 * B), const_cast<double*>(device + 5 * B)};
  langevin_norms<<<static_cast<unsigned>(B), kNormThreads, 0, ctx->stream>>>(v);
  FDC_LAUNCHED("langevin norms");
  langevin_step_sizes<<<1, 1, 0, ctx->stream>>>(v);
  FDC_LAUNCHED("langevin step sizes");
  langevin_update<<<grid_for(B * p.channels * p.pixels), kThreads, 0, ctx->stream>>>(v, x, out, mean_out);
  FDC_LAUNCHED("langevin update");
  return FDC_OK;
}

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
