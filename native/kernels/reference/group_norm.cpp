// Reference GroupNorm: for each (image, group), the mean and then the centred second moment
// in float64 over the group's channels and pixels, then the per-element formula of kernels.h.
#include <cmath>

#include "kernels/reference/reference.h"

namespace fusediff::kernels::reference {

int64_t group_norm_scratch_floats(const GroupNormParams&) { return 0; }

void group_norm(const GroupNormParams& p, const float* x, float* y, float*, ThreadPool&) {
  const int per_group = p.channels / p.groups;
  const double count = static_cast<double>(p.pixels) * per_group;
  for (int n = 0; n < p.batch; ++n)
    for (int g = 0; g < p.groups; ++g) {
      const float* img = x + static_cast<int64_t>(n) * p.pixels * p.channels;
      float* out = y + static_cast<int64_t>(n) * p.pixels * p.channels;
      const int c0 = g * per_group;
      double sum = 0.0;
      for (int64_t pix = 0; pix < p.pixels; ++pix)
        for (int c = c0; c < c0 + per_group; ++c) sum += img[pix * p.channels + c];
      const double mean = sum / count;
      double sq = 0.0;
      for (int64_t pix = 0; pix < p.pixels; ++pix)
        for (int c = c0; c < c0 + per_group; ++c) {
          const double d = img[pix * p.channels + c] - mean;
          sq += d * d;
        }
      const double rstd = 1.0 / std::sqrt(sq / count + p.eps);
      for (int64_t pix = 0; pix < p.pixels; ++pix)
        for (int c = c0; c < c0 + per_group; ++c) {
          double v = (img[pix * p.channels + c] - mean) * rstd * p.gamma[c] + p.beta[c];
          if (p.scale_shift)
            v = v * (1.0 + p.scale_shift[n * p.scale_shift_stride + c]) + p.scale_shift[n * p.scale_shift_stride + p.channels + c];
          const float f = static_cast<float>(v);
          out[pix * p.channels + c] = p.silu ? f / (1.0f + std::exp(-f)) : f;
        }
    }
}

}  // namespace fusediff::kernels::reference
