// GroupNorm (+ scale-shift, + SiLU) vectorised across channels. The definition is in
// elementwise.h / reference/group_norm.cpp; this version makes two passes over NHWC data,
// each a streaming loop over whole pixels:
//   1. per-channel shifted sums over fixed chunks of pixels,
//        S1[c] = sum (x - K[c]),   S2[c] = sum (x - K[c])^2,   K[c] = x[n, pixel 0, c],
//      in float inside a chunk and float64 across chunks, reduced in chunk order (the result
//      does not depend on the thread count). The group's moments follow exactly from them:
//        mean = sum_c (S1[c] + P K[c]) / (P C_g)
//        sum_p (x - mean)^2 = sum_c S2[c] + 2 (K[c] - mean) S1[c] + P (K[c] - mean)^2
//      The shift is a value of the channel itself, so S2 does not carry the large
//      P mean^2 that the naive sum of squares cancels against (Chan, Golub & LeVeque 1983,
//      "Algorithms for computing the sample variance"); one read of the tensor instead of the
//      two of a mean-then-variance scheme.
//   2. y = x * a[n,c] + b[n,c], where a and b fold the normalisation, the affine and the
//      scale-shift, then SiLU.
// Compiled once per ISA like conv2d.cpp.
#include <algorithm>
#include <cmath>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int64_t kChunk = 32;  // pixels per partial sum

// Where the scratch memory goes (sizes in floats; doubles take two and stay 8-byte aligned
// because every part before them has an even size).
struct Scratch {
  float *partial;  // [batch * chunks][2][channels]: S1 then S2 of each chunk
  float *a, *b;    // [batch][channels]
  double *s1, *s2;  // [batch][channels]
};

int64_t even(int64_t n) { return (n + 1) / 2 * 2; }

int64_t chunks_of(const GroupNormParams& p) { return (p.pixels + kChunk - 1) / kChunk; }

Scratch carve(const GroupNormParams& p, float* base) {
  const int64_t bc = even(static_cast<int64_t>(p.batch) * p.channels);
  Scratch s;
  s.partial = base;
  s.a = s.partial + even(p.batch * chunks_of(p) * 2 * p.channels);
  s.b = s.a + bc;
  s.s1 = reinterpret_cast<double*>(s.b + bc);
  s.s2 = s.s1 + static_cast<int64_t>(p.batch) * p.channels;
  return s;
}

// Pass 1: the shifted sums of every (image, chunk), shift = the image's first pixel.
void chunk_sums(const GroupNormParams& p, const float* x, float* partial, ThreadPool& pool) {
  const int64_t chunks = chunks_of(p);
  pool.parallel_for(p.batch * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const int64_t first = chunk * kChunk, last = std::min(p.pixels, first + kChunk);
      const float* shift = x + n * p.pixels * p.channels;
      float* s1 = partial + item * 2 * p.channels;
      float* s2 = s1 + p.channels;
      int c = 0;
      for (; c + kVec <= p.channels; c += kVec) {
        const vec k = load(shift + c);
        vec a1{}, a2{};
        for (int64_t pix = first; pix < last; ++pix) {
          const vec d = load(x + (n * p.pixels + pix) * p.channels + c) - k;
          a1 += d;
          a2 += d * d;
        }
        store(s1 + c, a1);
        store(s2 + c, a2);
      }
      for (; c < p.channels; ++c) {
        float a1 = 0.0f, a2 = 0.0f;
        for (int64_t pix = first; pix < last; ++pix) {
          const float d = x[(n * p.pixels + pix) * p.channels + c] - shift[c];
          a1 += d;
          a2 += d * d;
        }
        s1[c] = a1;
        s2[c] = a2;
      }
    }
  });
}

// The per-(image, channel) sums of the chunks in float64 and chunk order, then per group the
// moments and the folded y = x * a + b coefficients.
void coefficients(const GroupNormParams& p, const float* x, const Scratch& s) {
  const int64_t chunks = chunks_of(p);
  const int per_group = p.channels / p.groups;
  const double pixels = static_cast<double>(p.pixels);
  for (int n = 0; n < p.batch; ++n) {
    double* s1 = s.s1 + static_cast<int64_t>(n) * p.channels;
    double* s2 = s.s2 + static_cast<int64_t>(n) * p.channels;
    std::fill_n(s1, p.channels, 0.0);
    std::fill_n(s2, p.channels, 0.0);
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const float* part = s.partial + (n * chunks + chunk) * 2 * p.channels;
      for (int c = 0; c < p.channels; ++c) {
        s1[c] += part[c];
        s2[c] += part[p.channels + c];
      }
    }
    const float* shift = x + n * p.pixels * p.channels;
    for (int g = 0; g < p.groups; ++g) {
      const int c0 = g * per_group, c1 = c0 + per_group;
      double total = 0.0;
      for (int c = c0; c < c1; ++c) total += s1[c] + pixels * shift[c];
      const double mean = total / (pixels * per_group);
      double squares = 0.0;
      for (int c = c0; c < c1; ++c) {
        const double k = shift[c] - mean;
        squares += s2[c] + 2.0 * k * s1[c] + pixels * k * k;
      }
      const double rstd = 1.0 / std::sqrt(std::max(0.0, squares / (pixels * per_group)) + p.eps);
      for (int c = c0; c < c1; ++c) {
        double ac = rstd * p.gamma[c], bc = p.beta[c] - mean * ac;
        if (p.scale_shift) {
          const double scale = 1.0 + p.scale_shift[n * p.scale_shift_stride + c];
          const double shift_term = p.scale_shift[n * p.scale_shift_stride + p.channels + c];
          ac *= scale;
          bc = bc * scale + shift_term;
        }
        s.a[static_cast<int64_t>(n) * p.channels + c] = static_cast<float>(ac);
        s.b[static_cast<int64_t>(n) * p.channels + c] = static_cast<float>(bc);
      }
    }
  }
}

}  // namespace

int64_t group_norm_scratch_floats(const GroupNormParams& p) {
  return even(p.batch * chunks_of(p) * 2 * p.channels) + 2 * even(static_cast<int64_t>(p.batch) * p.channels) +
         4 * static_cast<int64_t>(p.batch) * p.channels;
}

void group_norm(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool) {
  const Scratch s = carve(p, scratch);
  chunk_sums(p, x, s.partial, pool);
  coefficients(p, x, s);
  // Pass 2: y = x * a + b (then SiLU) in pixel chunks.
  const int64_t chunks = chunks_of(p);
  pool.parallel_for(p.batch * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t n = item / chunks, chunk = item % chunks;
      const float* an = s.a + n * p.channels;
      const float* bn = s.b + n * p.channels;
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
