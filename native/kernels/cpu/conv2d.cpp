// Fast convolution as an implicit GEMM over NHWC activations.
//
//   y[pixel, co] = sum over taps t=(ky,kx) and input channels ci of
//                  x[pixel shifted by t, ci] * W[t, ci, co]
//
// M = output pixels, N = output channels, K = taps x input channels. Weights are packed once
// into panels of 16 output channels, [panel][tap][ci][16], in the order the inner loop reads
// them. The microkernel keeps a register tile of kTilePixels output pixels (along a row) x
// kTilePanels panels of accumulators, and for each (tap, ci) broadcasts one input value per
// pixel against the panels' weight vectors. Pixels whose taps all fall inside the input take
// that path; the few border pixels take a one-pixel version that skips out-of-range taps.
//
// This file is compiled once per ISA (see CMakeLists.txt) with different vector widths and
// tile sizes: FUSEDIFF_ISA names the namespace, FUSEDIFF_VEC (floats per SIMD register),
// FUSEDIFF_TILE_PIXELS and FUSEDIFF_TILE_PANELS size the register tile for that ISA's
// register file (AVX-512: 8 x 2 panels = 16 zmm accumulators; AVX2: 6 x 1 panel = 12 ymm;
// SSE/NEON: 3 x 1 panel = 12 xmm).
#include <algorithm>
#include <cstring>

#include "kernels/cpu/cpu_kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int kPanel = 16;  // output channels per packed panel
constexpr int kVec = FUSEDIFF_VEC;
constexpr int kVecsPerPanel = kPanel / kVec;
constexpr int kTilePixels = FUSEDIFF_TILE_PIXELS;
constexpr int kTilePanels = FUSEDIFF_TILE_PANELS;

typedef float vec __attribute__((vector_size(kVec * sizeof(float))));

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

struct Geometry {
  const Conv2dParams& p;
  int64_t panel_stride;  // floats between consecutive panels of the packed weights
};

// Sums the taps of output pixels [ox, ox + R) of row oy into acc (R pixels x P panels x
// kVecsPerPanel vectors), for taps kx in [kx_begin, kx_end) — all of them for interior tiles.
template <int R, int P>
inline void accumulate(const Geometry& g, const float* x_img, const float* w_panels, int oy, int ox, int kx_begin,
                       int kx_end, vec (&acc)[R][P][kVecsPerPanel]) {
  const Conv2dParams& p = g.p;
  for (int ky = 0; ky < p.kernel; ++ky) {
    const int iy = oy * p.stride - p.pad_top + ky;
    if (iy < 0 || iy >= p.in_h) continue;
    const float* row = x_img + static_cast<int64_t>(iy) * p.in_w * p.in_c;
    for (int kx = kx_begin; kx < kx_end; ++kx) {
      const float* px[R];
      for (int r = 0; r < R; ++r) px[r] = row + static_cast<int64_t>((ox + r) * p.stride - p.pad_left + kx) * p.in_c;
      const float* w = w_panels + static_cast<int64_t>(ky * p.kernel + kx) * p.in_c * kPanel;
      for (int ci = 0; ci < p.in_c; ++ci, w += kPanel) {
        vec wv[P][kVecsPerPanel];
#pragma GCC unroll 4
        for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
          for (int v = 0; v < kVecsPerPanel; ++v) wv[q][v] = load(w + q * g.panel_stride + v * kVec);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const float a = px[r][ci];
#pragma GCC unroll 4
          for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
            for (int v = 0; v < kVecsPerPanel; ++v) acc[r][q][v] += wv[q][v] * a;
        }
      }
    }
  }
}

// Epilogue of kernels.h for one tile, then the store; channels past out_c are dropped.
template <int R, int P>
inline void store(const Conv2dParams& p, const ConvEpilogue& e, float* y, int n, int oy, int ox, int co0,
                  vec (&acc)[R][P][kVecsPerPanel]) {
  for (int r = 0; r < R; ++r) {
    const int64_t pix = (static_cast<int64_t>(n) * p.out_h + oy) * p.out_w + ox + r;
    float* out = y + pix * p.out_c;
    const float* res = e.residual ? e.residual + pix * p.out_c : nullptr;
    for (int q = 0; q < P; ++q)
      for (int v = 0; v < kVecsPerPanel; ++v) {
        const int c0 = co0 + q * kPanel + v * kVec;
        if (c0 >= p.out_c) continue;
        float lane[kVec];
        std::memcpy(lane, &acc[r][q][v], sizeof(lane));
        const int count = std::min(kVec, p.out_c - c0);
        for (int i = 0; i < count; ++i) {
          const int c = c0 + i;
          float s = lane[i];
          if (e.bias) s += e.bias[c];
          if (e.batch_bias) s += e.batch_bias[n * e.batch_bias_stride + c];
          if (res) s += res[c];
          out[c] = s * e.output_scale;
        }
      }
  }
}

template <int R, int P>
inline void tile(const Geometry& g, const float* x_img, const float* w_panels, const ConvEpilogue& e, float* y,
                 int n, int oy, int ox, int co0, int kx_begin, int kx_end) {
  vec acc[R][P][kVecsPerPanel];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < P; ++q)
      for (int v = 0; v < kVecsPerPanel; ++v) acc[r][q][v] = vec{};
  accumulate<R, P>(g, x_img, w_panels, oy, ox, kx_begin, kx_end, acc);
  store<R, P>(g.p, e, y, n, oy, ox, co0, acc);
}

// One output row for P panels starting at panel `panel0`.
template <int P>
void row(const Geometry& g, const float* x, const float* w, const ConvEpilogue& e, float* y, int n, int oy,
         int panel0) {
  const Conv2dParams& p = g.p;
  const float* x_img = x + static_cast<int64_t>(n) * p.in_h * p.in_w * p.in_c;
  const float* w_panels = w + panel0 * g.panel_stride;
  const int co0 = panel0 * kPanel;
  // Output columns whose kernel window lies fully inside the input: [lo, hi).
  const int lo = std::min(p.out_w, (p.pad_left + p.stride - 1) / p.stride);
  const int last_start = p.in_w - p.kernel + p.pad_left;  // largest ox*stride with the window inside
  const int hi = last_start < 0 ? lo : std::max(lo, std::min(p.out_w, last_start / p.stride + 1));
  auto border = [&](int ox) {
    const int ix0 = ox * p.stride - p.pad_left;
    tile<1, P>(g, x_img, w_panels, e, y, n, oy, ox, co0, std::max(0, -ix0), std::min(p.kernel, p.in_w - ix0));
  };
  for (int ox = 0; ox < lo; ++ox) border(ox);
  int ox = lo;
  for (; ox + kTilePixels <= hi; ox += kTilePixels)
    tile<kTilePixels, P>(g, x_img, w_panels, e, y, n, oy, ox, co0, 0, p.kernel);
  for (; ox < hi; ++ox) tile<1, P>(g, x_img, w_panels, e, y, n, oy, ox, co0, 0, p.kernel);
  for (ox = hi; ox < p.out_w; ++ox) border(ox);
}

}  // namespace

void pack_conv(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out) {
  const int panels = (out_c + kPanel - 1) / kPanel;
  const int taps = kernel * kernel;
  out->data = AlignedBuffer(static_cast<size_t>(panels) * taps * in_c * kPanel * sizeof(float));
  float* dst = out->data.f32();
  for (int co = 0; co < out_c; ++co)
    for (int ci = 0; ci < in_c; ++ci)
      for (int t = 0; t < taps; ++t)
        dst[((static_cast<int64_t>(co / kPanel) * taps + t) * in_c + ci) * kPanel + co % kPanel] =
            oihw[(static_cast<int64_t>(co) * in_c + ci) * taps + t];
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = kernel;
}

void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
            ThreadPool& pool) {
  const int panels = (p.out_c + kPanel - 1) / kPanel;
  const Geometry g{p, static_cast<int64_t>(p.kernel) * p.kernel * p.in_c * kPanel};
  const int groups = (panels + kTilePanels - 1) / kTilePanels;
  const int64_t rows = static_cast<int64_t>(p.batch) * p.out_h;
  // Work items are (panel group, output row); a static split keeps results thread-count independent
  // (each output value is computed by exactly one item, in the same order).
  pool.parallel_for(rows * groups, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int group = static_cast<int>(item / rows);
      const int64_t r = item % rows;
      const int n = static_cast<int>(r / p.out_h), oy = static_cast<int>(r % p.out_h);
      const int panel0 = group * kTilePanels;
      if (panels - panel0 >= kTilePanels)
        row<kTilePanels>(g, x, w.data.f32(), e, y, n, oy, panel0);
      else
        for (int q = panel0; q < panels; ++q) row<1>(g, x, w.data.f32(), e, y, n, oy, q);
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
