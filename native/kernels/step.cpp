// The threaded step kernels (contracts in step.h). Each parallel region splits the flat
// element range into contiguous chunks; every element is computed from its own inputs only
// (noise included, which is a pure function of its index), so chunking never changes a
// value. Reductions use fixed-size blocks combined in order for the same reason.
#include "kernels/step.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "core/philox.h"

namespace fusediff::kernels {

namespace {

constexpr int64_t kReduceBlock = 4096;

inline double coef(const double* a, int64_t b) { return a ? a[b] : 0.0; }

bool any_nonzero(const double* a, int64_t n) {
  if (!a) return false;
  for (int64_t i = 0; i < n; ++i)
    if (a[i] != 0.0) return true;
  return false;
}

// Reads the noise of a chunk sequentially, computing each Philox block once for its four values.
class NoiseReader {
 public:
  explicit NoiseReader(const NoiseSource& z) : z_(z) {}
  // Noise of flat element e = b·per_item + i.
  double at(int64_t e, int64_t b, int64_t i) {
    if (z_.tensor) return z_.tensor[e];
    if (!z_.seeds) return 0.0;
    const uint64_t q = static_cast<uint64_t>(i) >> 2;
    if (b != cached_b_ || q != cached_q_) {
      philox::normal4(z_.seeds[b], z_.stream, q, cached_);
      cached_b_ = b, cached_q_ = q;
    }
    return cached_[i & 3];
  }

 private:
  const NoiseSource& z_;
  int64_t cached_b_ = -1;
  uint64_t cached_q_ = 0;
  float cached_[4] = {0, 0, 0, 0};
};

// The model output of image b at index i (i < C·pixels), with guidance applied.
struct ModelReader {
  const ModelOutputView& m;
  int64_t batch, per_item, item_stride;
  double prediction(int64_t b, int64_t i) const {
    if (!m.guided) return m.data[b * item_stride + i];
    const double u = m.data[b * item_stride + i];
    const double c = m.data[(b + batch) * item_stride + i];
    return u + m.guidance_scale * (c - u);
  }
  double variance(int64_t b, int64_t i) const {
    const int64_t item = m.guided ? b + batch : b;
    return m.data[item * item_stride + per_item + i];
  }
};

void check_common(int64_t batch, int64_t channels, int64_t pixels, const ModelOutputView& m, bool need_m,
                  bool need_variance, const char* kernel) {
  if (batch < 1 || channels < 1 || pixels < 1)
    fail(ErrorCode::Internal, std::string(kernel) + ": empty shape");
  if (need_m && !m.data) fail(ErrorCode::Argument, std::string(kernel) + ": this step needs the model output");
  if (m.data && m.m_channels != channels && m.m_channels != 2 * channels)
    fail(ErrorCode::Internal, std::string(kernel) + ": model output channels must be C or 2C");
  if (need_variance && (!m.data || m.m_channels != 2 * channels))
    fail(ErrorCode::Argument, std::string(kernel) + ": a learned variance needs a model output with 2x the channels");
}

}  // namespace

void affine_step(const AffineStepParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z,
                 const float* y, float* out, float* x0_out, ThreadPool& pool) {
  const bool need_m = any_nonzero(p.am, p.batch) || any_nonzero(p.bm, p.batch);
  const bool need_v = p.noise_scale != NoiseScaleMode::Constant && any_nonzero(p.bz, p.batch);
  check_common(p.batch, p.channels, p.pixels, m, need_m, need_v, "affine_step");
  if ((any_nonzero(p.az, p.batch) || any_nonzero(p.bz, p.batch)) && !z.present())
    fail(ErrorCode::Argument, "affine_step: this step needs noise");
  if (any_nonzero(p.by, p.batch) && !y) fail(ErrorCode::Argument, "affine_step: this step needs the extra tensor y");
  if (!x && (any_nonzero(p.ax, p.batch) || any_nonzero(p.bx, p.batch)))
    fail(ErrorCode::Argument, "affine_step: this step needs the sample x");

  const int64_t per_item = p.channels * p.pixels;
  const int64_t total = p.batch * per_item;
  const ModelReader mr{m, p.batch, per_item, m.m_channels * p.pixels};

  // x̂0 before clamping, of flat element e.
  auto predict = [&](int64_t e, int64_t b, int64_t i, NoiseReader& noise) {
    double v = 0.0;
    if (p.ax && p.ax[b] != 0.0) v += p.ax[b] * x[e];
    if (p.am && p.am[b] != 0.0) v += p.am[b] * mr.prediction(b, i);
    if (p.az && p.az[b] != 0.0) v += p.az[b] * noise.at(e, b, i);
    return v;
  };
  // out from the (clamped) x̂0.
  auto combine = [&](int64_t e, int64_t b, int64_t i, double x0, NoiseReader& noise) {
    double v = coef(p.b0, b) * x0;
    if (p.bx && p.bx[b] != 0.0) v += p.bx[b] * x[e];
    if (p.bm && p.bm[b] != 0.0) v += p.bm[b] * mr.prediction(b, i);
    if (p.by && p.by[b] != 0.0) v += p.by[b] * y[e];
    if (p.bz && p.bz[b] != 0.0) {
      double sz = p.bz[b];
      if (p.noise_scale == NoiseScaleMode::SqrtV) sz *= std::sqrt(mr.variance(b, i));
      else if (p.noise_scale == NoiseScaleMode::ExpV) sz *= std::exp(coef(p.e0, b) + coef(p.e1, b) * mr.variance(b, i));
      v += sz * noise.at(e, b, i);
    }
    return v;
  };

  if (p.clamp != ClampMode::Dynamic) {
    pool.parallel_for(total, [&](int64_t begin, int64_t end) {
      NoiseReader noise(z);
      for (int64_t e = begin; e < end; ++e) {
        const int64_t b = e / per_item, i = e - b * per_item;
        double x0 = predict(e, b, i, noise);
        if (p.clamp == ClampMode::Range) x0 = std::min(std::max(x0, p.clamp_lo), p.clamp_hi);
        if (x0_out) x0_out[e] = static_cast<float>(x0);
        out[e] = static_cast<float>(combine(e, b, i, x0, noise));
      }
    });
    return;
  }

  // Dynamic thresholding (Saharia et al. 2022, "Imagen", §2.3): x̂0 is needed whole before
  // its per-image quantile is known, so it is stored (as float32, like diffusers) first.
  std::vector<float> scratch;
  float* x0 = x0_out;
  if (!x0) {
    scratch.resize(static_cast<size_t>(total));
    x0 = scratch.data();
  }
  pool.parallel_for(total, [&](int64_t begin, int64_t end) {
    NoiseReader noise(z);
    for (int64_t e = begin; e < end; ++e) {
      const int64_t b = e / per_item;
      x0[e] = static_cast<float>(predict(e, b, e - b * per_item, noise));
    }
  });
  std::vector<double> s(static_cast<size_t>(p.batch));
  pool.parallel_for(p.batch, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      s[b] = std::min(std::max(abs_quantile(x0 + b * per_item, per_item, p.threshold_ratio), 1.0), p.threshold_max);
  });
  pool.parallel_for(total, [&](int64_t begin, int64_t end) {
    NoiseReader noise(z);
    for (int64_t e = begin; e < end; ++e) {
      const int64_t b = e / per_item;
      const double sb = s[b];
      const float v = static_cast<float>(std::min(std::max(static_cast<double>(x0[e]), -sb), sb) / sb);
      x0[e] = v;
      out[e] = static_cast<float>(combine(e, b, e - b * per_item, v, noise));
    }
  });
}

void langevin_step(const LangevinParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z, float* out,
                   float* mean_out, double* step_sizes, ThreadPool& pool) {
  check_common(p.batch, p.channels, p.pixels, m, true, false, "langevin_step");
  if (!z.present()) fail(ErrorCode::Argument, "langevin_step: the corrector needs noise");
  const int64_t per_item = p.channels * p.pixels;
  const int64_t total = p.batch * per_item;
  const ModelReader mr{m, p.batch, per_item, m.m_channels * p.pixels};

  // Squared norms of m and z per (image, block), then per image in block order.
  const int64_t blocks = (per_item + kReduceBlock - 1) / kReduceBlock;
  std::vector<double> mm(static_cast<size_t>(p.batch * blocks)), zz(mm.size());
  pool.parallel_for(p.batch * blocks, [&](int64_t begin, int64_t end) {
    NoiseReader noise(z);
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / blocks, i0 = (k % blocks) * kReduceBlock, i1 = std::min(per_item, i0 + kReduceBlock);
      double sm = 0, sz = 0;
      for (int64_t i = i0; i < i1; ++i) {
        const double mv = mr.prediction(b, i), zv = noise.at(b * per_item + i, b, i);
        sm += mv * mv;
        sz += zv * zv;
      }
      mm[k] = sm, zz[k] = sz;
    }
  });
  std::vector<double> grad(static_cast<size_t>(p.batch)), noise_norm(grad.size());
  for (int64_t b = 0; b < p.batch; ++b) {
    double sm = 0, sz = 0;
    for (int64_t k = 0; k < blocks; ++k) sm += mm[b * blocks + k], sz += zz[b * blocks + k];
    grad[b] = std::fabs(p.score_scale[b]) * std::sqrt(sm);
    noise_norm[b] = std::sqrt(sz);
  }
  if (p.batch_mean_norms) {
    double g = 0, q = 0;
    for (int64_t b = 0; b < p.batch; ++b) g += grad[b], q += noise_norm[b];
    for (int64_t b = 0; b < p.batch; ++b) grad[b] = g / p.batch, noise_norm[b] = q / p.batch;
  }
  std::vector<double> eps(static_cast<size_t>(p.batch));
  for (int64_t b = 0; b < p.batch; ++b) {
    const double r = grad[b] > 0 ? p.snr * noise_norm[b] / grad[b] : 0.0;
    eps[b] = 2.0 * (p.alpha ? p.alpha[b] : 1.0) * r * r;
    if (step_sizes) step_sizes[b] = eps[b];
  }
  pool.parallel_for(total, [&](int64_t begin, int64_t end) {
    NoiseReader noise(z);
    for (int64_t e = begin; e < end; ++e) {
      const int64_t b = e / per_item, i = e - b * per_item;
      const double mean = x[e] + eps[b] * p.score_scale[b] * mr.prediction(b, i);
      if (mean_out) mean_out[e] = static_cast<float>(mean);
      out[e] = static_cast<float>(mean + std::sqrt(2.0 * eps[b]) * noise.at(e, b, i));
    }
  });
}

double abs_quantile(const float* data, int64_t n, double q) {
  std::vector<float> a(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) a[i] = std::fabs(data[i]);
  const double pos = q * static_cast<double>(n - 1);
  const int64_t lo = static_cast<int64_t>(std::floor(pos));
  const int64_t hi = std::min(lo + 1, n - 1);
  // Two selections instead of a sort: the order statistics lo and hi.
  std::nth_element(a.begin(), a.begin() + lo, a.end());
  const double vlo = a[lo];
  double vhi = vlo;
  if (hi != lo) vhi = *std::min_element(a.begin() + lo + 1, a.end());
  return vlo + (pos - static_cast<double>(lo)) * (vhi - vlo);
}

void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream,
                   ThreadPool& pool) {
  const int64_t quads = (per_item + 3) / 4;
  pool.parallel_for(batch * quads, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / quads, q = k % quads;
      float z[4];
      philox::normal4(seeds[b], stream, static_cast<uint64_t>(q), z);
      const int64_t i0 = q * 4, n = std::min<int64_t>(4, per_item - i0);
      for (int64_t j = 0; j < n; ++j) out[b * per_item + i0 + j] = z[j];
    }
  });
}

void to_uint8_hwc(const float* x, int64_t batch, int64_t channels, int64_t pixels, const std::vector<int>& source,
                  float scale, float offset, uint8_t* out, ThreadPool& pool) {
  const int64_t oc = static_cast<int64_t>(source.size());
  for (int s : source)
    if (s >= channels) fail(ErrorCode::Internal, "to_uint8_hwc: source channel out of range");
  pool.parallel_for(batch * pixels, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b = k / pixels, pix = k % pixels;
      for (int64_t c = 0; c < oc; ++c) {
        uint8_t v = 255;
        if (source[c] >= 0) {
          float f = x[(b * channels + source[c]) * pixels + pix] * scale + offset;
          f = std::min(std::max(f, 0.0f), 1.0f) * 255.0f;  // NaN stays NaN and maps to 0 below
          v = f >= 0.0f ? static_cast<uint8_t>(std::nearbyint(f)) : 0;
        }
        out[k * oc + c] = v;
      }
    }
  });
}

void concat_batch(const std::vector<const float*>& parts, const std::vector<int64_t>& parts_numel, float* out,
                  ThreadPool& pool) {
  int64_t offset = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts_numel[i]) std::memcpy(out + offset, parts[i], static_cast<size_t>(parts_numel[i]) * sizeof(float));
    offset += parts_numel[i];
  }
}

}  // namespace fusediff::kernels
