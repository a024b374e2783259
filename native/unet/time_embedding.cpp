#include "unet/time_embedding.h"

#include <cmath>

namespace fusediff::unet {

void sinusoidal_embedding(const std::vector<double>& t, int dim, bool flip_sin_to_cos, double freq_shift, float* out) {
  const int half = dim / 2;
  for (size_t b = 0; b < t.size(); ++b) {
    float* row = out + b * dim;
    for (int j = 0; j < half; ++j) {
      const double a = t[b] * std::exp(-std::log(10000.0) * j / (half - freq_shift));
      const float s = static_cast<float>(std::sin(a)), c = static_cast<float>(std::cos(a));
      row[j] = flip_sin_to_cos ? c : s;
      row[half + j] = flip_sin_to_cos ? s : c;
    }
    if (dim % 2) row[dim - 1] = 0.0f;
  }
}

void fourier_embedding(const std::vector<double>& t, const std::vector<float>& w, float* out) {
  const size_t n = w.size();
  const double two_pi = 2.0 * M_PI;
  for (size_t b = 0; b < t.size(); ++b) {
    const double log_t = std::log(t[b]);
    for (size_t j = 0; j < n; ++j) {
      const double u = log_t * w[j] * two_pi;
      out[b * 2 * n + j] = static_cast<float>(std::sin(u));
      out[b * 2 * n + n + j] = static_cast<float>(std::cos(u));
    }
  }
}

}  // namespace fusediff::unet
