// Plain reference versions of the step kernels: one loop, one element at a time, written
// straight from the formulas in kernels/step.h. The oracle of native/tests/test_step.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/philox.h"
#include "kernels/step.h"

namespace fusediff::kernels::reference {

namespace {

double c(const double* a, int64_t b) { return a ? a[b] : 0.0; }

double noise_at(const NoiseSource& z, int64_t b, int64_t per_item, int64_t i) {
  if (z.tensor) return z.tensor[b * per_item + i];
  if (z.seeds) return philox::normal_at(z.seeds[b], z.stream, static_cast<uint64_t>(i));
  return 0.0;
}

struct View {
  const ModelOutputView& m;
  int64_t batch, per_item, stride;
  double pred(int64_t b, int64_t i) const {
    if (!m.data) return 0.0;
    if (!m.guided) return m.data[b * stride + i];
    const double u = m.data[b * stride + i], cnd = m.data[(b + batch) * stride + i];
    return u + m.guidance_scale * (cnd - u);
  }
  double var(int64_t b, int64_t i) const { return m.data[(m.guided ? b + batch : b) * stride + per_item + i]; }
};

}  // namespace

void affine_step(const AffineStepParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z,
                 const float* y, float* out, float* x0_out) {
  const int64_t per_item = p.channels * p.pixels;
  const View v{m, p.batch, per_item, m.m_channels * p.pixels};
  std::vector<double> x0(static_cast<size_t>(p.batch * per_item));
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t i = 0; i < per_item; ++i) {
      const int64_t e = b * per_item + i;
      double a = 0;
      if (c(p.ax, b) != 0) a += c(p.ax, b) * x[e];
      if (c(p.am, b) != 0) a += c(p.am, b) * v.pred(b, i);
      if (c(p.az, b) != 0) a += c(p.az, b) * noise_at(z, b, per_item, i);
      if (p.clamp == ClampMode::Range) a = std::min(std::max(a, p.clamp_lo), p.clamp_hi);
      if (p.clamp == ClampMode::Dynamic) a = static_cast<float>(a);  // stored as float32 before thresholding
      x0[e] = a;
    }
  if (p.clamp == ClampMode::Dynamic) {
    for (int64_t b = 0; b < p.batch; ++b) {
      std::vector<float> item(per_item);
      for (int64_t i = 0; i < per_item; ++i) item[i] = static_cast<float>(x0[b * per_item + i]);
      double s = reference::abs_quantile(item.data(), per_item, p.threshold_ratio);
      s = std::min(std::max(s, 1.0), p.threshold_max);
      for (int64_t i = 0; i < per_item; ++i) {
        double& a = x0[b * per_item + i];
        a = static_cast<float>(std::min(std::max(a, -s), s) / s);
      }
    }
  }
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t i = 0; i < per_item; ++i) {
      const int64_t e = b * per_item + i;
      double r = c(p.b0, b) * x0[e];
      if (c(p.bx, b) != 0) r += c(p.bx, b) * x[e];
      if (c(p.bm, b) != 0) r += c(p.bm, b) * v.pred(b, i);
      if (c(p.by, b) != 0) r += c(p.by, b) * y[e];
      if (c(p.bz, b) != 0) {
        double sigma = c(p.bz, b);
        if (p.noise_scale == NoiseScaleMode::SqrtV) sigma *= std::sqrt(v.var(b, i));
        if (p.noise_scale == NoiseScaleMode::ExpV) sigma *= std::exp(c(p.e0, b) + c(p.e1, b) * v.var(b, i));
        r += sigma * noise_at(z, b, per_item, i);
      }
      if (x0_out) x0_out[e] = static_cast<float>(x0[e]);
      out[e] = static_cast<float>(r);
    }
}

void langevin_step(const LangevinParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z, float* out,
                   float* mean_out, double* step_sizes) {
  const int64_t per_item = p.channels * p.pixels;
  const View v{m, p.batch, per_item, m.m_channels * p.pixels};
  std::vector<double> g(p.batch), q(p.batch);
  for (int64_t b = 0; b < p.batch; ++b) {
    double sm = 0, sz = 0;
    for (int64_t i = 0; i < per_item; ++i) {
      const double s = p.score_scale[b] * v.pred(b, i), n = noise_at(z, b, per_item, i);
      sm += s * s;
      sz += n * n;
    }
    g[b] = std::sqrt(sm);
    q[b] = std::sqrt(sz);
  }
  if (p.batch_mean_norms) {
    double gm = 0, qm = 0;
    for (int64_t b = 0; b < p.batch; ++b) gm += g[b] / p.batch, qm += q[b] / p.batch;
    for (int64_t b = 0; b < p.batch; ++b) g[b] = gm, q[b] = qm;
  }
  for (int64_t b = 0; b < p.batch; ++b) {
    const double eps = g[b] > 0 ? 2.0 * (p.alpha ? p.alpha[b] : 1.0) * std::pow(p.snr * q[b] / g[b], 2) : 0.0;
    if (step_sizes) step_sizes[b] = eps;
    for (int64_t i = 0; i < per_item; ++i) {
      const int64_t e = b * per_item + i;
      const double mean = x[e] + eps * p.score_scale[b] * v.pred(b, i);
      if (mean_out) mean_out[e] = static_cast<float>(mean);
      out[e] = static_cast<float>(mean + std::sqrt(2.0 * eps) * noise_at(z, b, per_item, i));
    }
  }
}

double abs_quantile(const float* data, int64_t n, double q) {
  std::vector<double> a(data, data + n);
  for (double& v : a) v = std::fabs(v);
  std::sort(a.begin(), a.end());
  const double pos = q * static_cast<double>(n - 1);
  const auto lo = static_cast<int64_t>(std::floor(pos));
  const auto hi = static_cast<int64_t>(std::ceil(pos));
  return a[lo] + (pos - static_cast<double>(lo)) * (a[hi] - a[lo]);
}

void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream) {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < per_item; ++i)
      out[b * per_item + i] = philox::normal_at(seeds[b], stream, static_cast<uint64_t>(i));
}

}  // namespace fusediff::kernels::reference
