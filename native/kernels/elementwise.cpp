#include "kernels/elementwise.h"

#include <cmath>
#include <cstring>

namespace fusediff::kernels {

namespace {
inline float silu1(float v) { return v / (1.0f + std::exp(-v)); }
}  // namespace

void nchw_to_nhwc(const float* x, int batch, int channels, int height, int width, bool center, float* y,
                  ThreadPool& pool) {
  const int64_t hw = static_cast<int64_t>(height) * width;
  pool.parallel_for(batch * hw, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / hw, pix = i % hw;
      const float* src = x + n * channels * hw + pix;
      float* dst = y + i * channels;
      for (int c = 0; c < channels; ++c) dst[c] = center ? 2.0f * src[c * hw] - 1.0f : src[c * hw];
    }
  });
}

void nhwc_to_nchw(const float* x, int batch, int height, int width, int channels, const float* divisor, float* y,
                  ThreadPool& pool) {
  const int64_t hw = static_cast<int64_t>(height) * width;
  pool.parallel_for(batch * hw, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t n = i / hw, pix = i % hw;
      const float* src = x + i * channels;
      float* dst = y + n * channels * hw + pix;
      for (int c = 0; c < channels; ++c) dst[c * hw] = divisor ? src[c] / divisor[n] : src[c];
    }
  });
}

void silu(const float* x, int64_t count, float* y) {
  for (int64_t i = 0; i < count; ++i) y[i] = silu1(x[i]);
}

void upsample_nearest2x(const float* x, int batch, int height, int width, int channels, float* y, ThreadPool& pool) {
  const int out_w = 2 * width;
  pool.parallel_for(static_cast<int64_t>(batch) * height, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* src = x + r * width * channels;
      float* dst0 = y + (2 * r) * out_w * static_cast<int64_t>(channels);
      float* dst1 = dst0 + static_cast<int64_t>(out_w) * channels;
      for (int j = 0; j < width; ++j)
        for (int b = 0; b < 2; ++b) std::memcpy(dst0 + (2 * j + b) * channels, src + j * channels, channels * sizeof(float));
      std::memcpy(dst1, dst0, static_cast<size_t>(out_w) * channels * sizeof(float));
    }
  });
}

void avg_pool2x2(const float* x, int batch, int height, int width, int channels, float* y, ThreadPool& pool) {
  const int out_h = height / 2, out_w = width / 2;
  pool.parallel_for(static_cast<int64_t>(batch) * out_h, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t n = r / out_h, i = r % out_h;
      const float* row0 = x + ((n * height + 2 * i) * width) * channels;
      const float* row1 = row0 + static_cast<int64_t>(width) * channels;
      float* dst = y + r * out_w * channels;
      for (int j = 0; j < out_w; ++j)
        for (int c = 0; c < channels; ++c) {
          const int64_t a = (2 * j) * static_cast<int64_t>(channels) + c, b = a + channels;
          dst[j * static_cast<int64_t>(channels) + c] = ((row0[a] + row0[b]) + (row1[a] + row1[b])) * 0.25f;
        }
    }
  });
}

void concat_channels(const float* a, int ca, const float* b, int cb, int64_t pixels, float* y, ThreadPool& pool) {
  const int cy = ca + cb;
  pool.parallel_for(pixels, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      std::memcpy(y + i * cy, a + i * ca, ca * sizeof(float));
      std::memcpy(y + i * cy + ca, b + i * cb, cb * sizeof(float));
    }
  });
}

}  // namespace fusediff::kernels
