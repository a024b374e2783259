// GroupNorm (+ scale-shift, + SiLU) vectorised across channels. The definition is in
// elementwise.h / reference/group_norm.cpp; this version makes three passes over NHWC data,
// each a streaming loop over whole pixels:
//   1. per-channel sums over fixed chunks of pixels (float inside a chunk, float64 across
//      chunks, reduced in chunk order: the result does not depend on the thread count);
//   2. per-channel sums of squares about the group mean (two-pass variance: no cancellation);
//   3. y = x * a[n,c] + b[n,c], where a and b fold the normalisation, the affine and the
//      scale-shift, then SiLU.
// Compiled once per ISA like conv2d.cpp.
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int64_t kChunk = 16;  // pixels per partial sum

// partial[(n * chunks + chunk) * channels + c] = sum over the chunk's pixels of x, or of
// (x - center[n, c])^2 when center is given.
void channel_partials(const GroupNormParams& p, const float* x, const float* center, int64_t chunks, float* partial,
                      ThreadPool& pool) {
  pool.parallel_for(p.batch * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t first = chunk * kChunk, last = std::min(p.pixels, first + kChunk);
      const float* m = center ? center + n * p.channels : nullptr;
      float* acc = partial + item * p.channels;
      std::fill_n(acc, p.channels, 0.0f);
      for (int64_t pix = first; pix < last; ++pix) {
        const float* row = x + (n * p.pixels + pix) * p.channels;
        int c = 0;
        for (; c + kVec <= p.channels; c += kVec) {
          const vec v = m ? load(row + c) - load(m + c) : load(row + c);
          store(acc + c, load(acc + c) + (m ? v * v : v));
        }
        for (; c < p.channels; ++c) {
          const float v = m ? row[c] - m[c] : row[c];
          acc[c] += m ? v * v : v;
        }
      }
    }
  });
}

// Per (image, group) sum of the partials, in float64 and in chunk order.
void group_sums(const GroupNormParams& p, int64_t chunks, const float* partial, double* out) {
  const int per_group = p.channels / p.groups;
  std::fill_n(out, p.batch * p.groups, 0.0);
  for (int n = 0; n < p.batch; ++n)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const float* acc = partial + (n * chunks + chunk) * p.channels;
      for (int c = 0; c < p.channels; ++c) out[n * p.groups + c / per_group] += acc[c];
    }
}

// Where the scratch memory goes (all sizes in floats; doubles take two, and stay 8-byte aligned
// because every part before them has an even size).
struct Scratch {
  float *partial, *mean, *a, *b;
  double *sums, *squares;
};

int64_t even(int64_t n) { return (n + 1) / 2 * 2; }

Scratch carve(const GroupNormParams& p, int64_t chunks, float* base) {
  Scratch s;
  const int64_t bc = even(static_cast<int64_t>(p.batch) * p.channels);
  s.partial = base;
  s.mean = s.partial + even(p.batch * chunks * p.channels);
  s.a = s.mean + bc;
  s.b = s.a + bc;
  s.sums = reinterpret_cast<double*>(s.b + bc);
  s.squares = s.sums + static_cast<int64_t>(p.batch) * p.groups;
  return s;
}

}  // namespace

int64_t group_norm_scratch_floats(const GroupNormParams& p) {
  const int64_t chunks = (p.pixels + kChunk - 1) / kChunk;
  return even(p.batch * chunks * p.channels) + 3 * even(static_cast<int64_t>(p.batch) * p.channels) +
         4 * static_cast<int64_t>(p.batch) * p.groups;
}

void group_norm(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool) {
  const int per_group = p.channels / p.groups;
  const int64_t chunks = (p.pixels + kChunk - 1) / kChunk;
  const Scratch s = carve(p, chunks, scratch);
  const double count = static_cast<double>(p.pixels) * per_group;
  double* sums = s.sums;
  double* squares = s.squares;
  float* a = s.a;
  float* b = s.b;

  channel_partials(p, x, nullptr, chunks, s.partial, pool);
  group_sums(p, chunks, s.partial, sums);
  for (int n = 0; n < p.batch; ++n)  // the group mean, per channel
    for (int c = 0; c < p.channels; ++c) s.mean[n * p.channels + c] = static_cast<float>(sums[n * p.groups + c / per_group] / count);
  channel_partials(p, x, s.mean, chunks, s.partial, pool);
  group_sums(p, chunks, s.partial, squares);

  // y = x * a + b per (image, channel).
  for (int n = 0; n < p.batch; ++n)
    for (int c = 0; c < p.channels; ++c) {
      const int g = c / per_group;
      const double mu = sums[n * p.groups + g] / count;
      const double rstd = 1.0 / std::sqrt(squares[n * p.groups + g] / count + p.eps);
      double ac = rstd * p.gamma[c], bc = p.beta[c] - mu * ac;
      if (p.scale_shift) {
        const double scale = 1.0 + p.scale_shift[n * p.scale_shift_stride + c];
        const double shift = p.scale_shift[n * p.scale_shift_stride + p.channels + c];
        ac *= scale;
        bc = bc * scale + shift;
      }
      a[n * p.channels + c] = static_cast<float>(ac);
      b[n * p.channels + c] = static_cast<float>(bc);
    }
  pool.parallel_for(p.batch * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const float* an = a + n * p.channels;
      const float* bn = b + n * p.channels;
      for (int64_t pix = chunk * kChunk; pix < std::min(p.pixels, (chunk + 1) * kChunk); ++pix) {
        const float* src = x + (n * p.pixels + pix) * p.channels;
        float* dst = y + (n * p.pixels + pix) * p.channels;
        int c = 0;
        for (; c + kVec <= p.channels; c += kVec) {
          const vec v = load(src + c) * load(an + c) + load(bn + c);
          store(dst + c, p.silu ? vsilu(v) : v);
        }
        for (; c < p.channels; ++c) {
          const vec v = splat(src[c] * an[c] + bn[c]);
          dst[c] = (p.silu ? vsilu(v) : v)[0];
        }
      }
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
