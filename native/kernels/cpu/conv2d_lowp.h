// The implicit-GEMM convolution shared by the int8 and bf16 kernels (conv2d_int8.cpp,
// conv2d_bf16.cpp), over a Dot from lowp_dot.h:
//
//   acc[pixel, co] = sum over taps t=(ky,kx) and groups g of
//                    Dot(xg[pixel shifted by t, g], W[panel(co)][t][g][co % 16])
//   y[pixel, co]   = epilogue(dequant(acc, n, co))
//
// Dequant turns one accumulator register into a float vector, in two parts so that a tile's
// pixels share the per-channel work: col = dq.column(n, c0) for kLanes channels from c0 of
// image n, then vec dq(acc, col) per pixel; lanes past out_c are ignored.
//
// M = output pixels, N = output channels, K = taps x groups of four bytes (4 int8 or 2 bf16
// input channels). The input has first been converted (quantized or rounded) into a scratch
// copy with a one-pixel halo on every side, zero or wrapped (circular padding), and its
// channels padded to whole groups with the zero value: every tap of every output pixel is
// then in range and the microkernel has no boundary tests. (A halo of one covers all the
// U-Net's convolutions: 3x3 with padding 1, stride 1 or 2; 3x3 stride 2 with diffusers'
// asymmetric padding 0; 1x1 without padding.)
//
// Weights are packed once into panels of 16 output channels, [panel][tap][group][16] words
// of four bytes, so one register load feeds kLanes channels x one group. Work items are the
// register tiles of register_tile.h, as in the float conv2d.cpp; each output is computed by
// one item in a fixed order, so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/lowp_dot.h"
#include "kernels/cpu/register_tile.h"
#include "kernels/kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA::lowp {

constexpr int kPanel = 16;
constexpr int kRegsPerPanel = kPanel / kLanes;

// The converted input: [batch][in_h + 2][in_w + 2][groups] words.
struct Prepared {
  const uint32_t* x;
  int hp, wp, groups;
};

inline int64_t align64(int64_t bytes) { return (bytes + 63) / 64 * 64; }

inline int64_t prepared_bytes(const Conv2dParams& p, int group_channels) {
  const int64_t groups = (p.in_c + group_channels - 1) / group_channels;
  return static_cast<int64_t>(p.batch) * (p.in_h + 2) * (p.in_w + 2) * groups * 4;
}

inline void check_geometry(const Conv2dParams& p) {
  if (p.input_resample != Conv2dParams::InputResample::None)
    fail(ErrorCode::Internal, "low-precision conv: no folded resampling (float convolutions only)");
  if (p.kernel != 1 && p.kernel != 3) fail(ErrorCode::Internal, "low-precision conv: kernel must be 1 or 3");
  if (p.pad_top < 0 || p.pad_top > 1 || p.pad_left < 0 || p.pad_left > 1)
    fail(ErrorCode::Internal, "low-precision conv: padding must be 0 or 1");
  if ((p.out_h - 1) * p.stride - p.pad_top + p.kernel > p.in_h + 1 ||
      (p.out_w - 1) * p.stride - p.pad_left + p.kernel > p.in_w + 1)
    fail(ErrorCode::Internal, "low-precision conv: output larger than a one-pixel halo allows");
}

// Fills the prepared copy of x. convert(src, count, dst_bytes) writes count converted
// channels; zero[n] is the element that means 0 in image n, `elem` its size (1 or 2 bytes).
template <typename Convert>
void prepare(const Conv2dParams& p, const float* x, int elem, const uint16_t* zeros, const Convert& convert,
             uint32_t* out, ThreadPool& pool) {
  const int per_group = 4 / elem;
  const int groups = (p.in_c + per_group - 1) / per_group;
  const int hp = p.in_h + 2, wp = p.in_w + 2;
  const int64_t pixel_bytes = static_cast<int64_t>(groups) * 4;
  auto fill_zero = [&](uint8_t* dst, int64_t elems, uint16_t zero) {
    if (elem == 1) {
      std::memset(dst, zero, static_cast<size_t>(elems));
    } else {
      for (int64_t i = 0; i < elems; ++i) std::memcpy(dst + 2 * i, &zero, 2);
    }
  };
  pool.parallel_for(static_cast<int64_t>(p.batch) * hp, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int n = static_cast<int>(item / hp), hy = static_cast<int>(item % hp);
      const uint16_t zero = zeros[n];
      uint8_t* row = reinterpret_cast<uint8_t*>(out) + item * wp * pixel_bytes;
      int iy = hy - 1;
      if (p.circular) iy = (iy % p.in_h + p.in_h) % p.in_h;
      if (iy < 0 || iy >= p.in_h) {
        fill_zero(row, wp * pixel_bytes / elem, zero);
        continue;
      }
      const float* src = x + (static_cast<int64_t>(n) * p.in_h + iy) * p.in_w * p.in_c;
      for (int hx = 0; hx < wp; ++hx) {
        uint8_t* dst = row + hx * pixel_bytes;
        int ix = hx - 1;
        if (p.circular) ix = (ix % p.in_w + p.in_w) % p.in_w;
        if (ix < 0 || ix >= p.in_w) {
          fill_zero(dst, pixel_bytes / elem, zero);
          continue;
        }
        convert(src + static_cast<int64_t>(ix) * p.in_c, p.in_c, n, dst);
        fill_zero(dst + static_cast<int64_t>(p.in_c) * elem, pixel_bytes / elem - p.in_c, zero);
      }
    }
  });
}

// Packs weights given per (co, ci, tap) as `elem`-byte values into [panel][tap][group][16][4
// bytes]; absent channels stay zero.
template <typename Get>
void pack_panels(int out_c, int in_c, int kernel, int elem, const Get& get, AlignedBuffer& data) {
  const int per_group = 4 / elem;
  const int groups = (in_c + per_group - 1) / per_group;
  const int panels = (out_c + kPanel - 1) / kPanel;
  const int taps = kernel * kernel;
  data = AlignedBuffer(static_cast<size_t>(panels) * taps * groups * kPanel * 4);
  uint8_t* dst = static_cast<uint8_t*>(data.data());
  for (int co = 0; co < out_c; ++co)
    for (int ci = 0; ci < in_c; ++ci)
      for (int t = 0; t < taps; ++t) {
        const int64_t word = ((static_cast<int64_t>(co / kPanel) * taps + t) * groups + ci / per_group) * kPanel + co % kPanel;
        get(co, ci, t, dst + word * 4 + (ci % per_group) * elem);
      }
}

template <class D, class Dequant>
struct Conv {
  using Acc = typename D::Acc;
  using W = typename D::W;
  static_assert(kLanes == kVec && sizeof(Acc) == sizeof(vec), "one accumulator is one float vector wide");

  const Conv2dParams& p;
  const Prepared& in;
  const uint32_t* w;
  int64_t panel_stride;  // words between panels
  const ConvEpilogue& e;
  const Dequant& dq;
  float* y;

  // The tile of R pixels from it.m0 x P panels from it.panel0. base[r] is pixel r's tap (0, 0).
  template <int R, int P>
  void tile(const TileSchedule::Item& it, const uint32_t* const* base) const {
    Acc acc[R][P][kRegsPerPanel];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < P; ++q)
        for (int v = 0; v < kRegsPerPanel; ++v) acc[r][q][v] = D::zero();
    const uint32_t* w_panels = w + it.panel0 * panel_stride;
    const int groups = in.groups;
    for (int ky = 0; ky < p.kernel; ++ky) {
      for (int kx = 0; kx < p.kernel; ++kx) {
        const uint32_t* px[R];
        for (int r = 0; r < R; ++r) px[r] = base[r] + (static_cast<int64_t>(ky) * in.wp + kx) * groups;
        const uint32_t* wt = w_panels + static_cast<int64_t>(ky * p.kernel + kx) * groups * kPanel;
        for (int g = 0; g < groups; ++g, wt += kPanel) {
          W wv[P][kRegsPerPanel];
#pragma GCC unroll 4
          for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
            for (int v = 0; v < kRegsPerPanel; ++v) wv[q][v] = D::weights(wt + q * panel_stride + v * kLanes);
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            const uint32_t xg = load_group(px[r] + g);
#pragma GCC unroll 4
            for (int q = 0; q < P; ++q)
#pragma GCC unroll 4
              for (int v = 0; v < kRegsPerPanel; ++v) acc[r][q][v] = D::dot(acc[r][q][v], xg, wv[q][v]);
          }
        }
      }
    }
    // Dequantization, the epilogue of kernels.h, then the single store; per-channel terms
    // are loaded once per column of the tile. The tile's pixels are consecutive in the output.
    const int64_t pix0 = static_cast<int64_t>(it.n) * p.out_h * p.out_w + it.m0;
    for (int q = 0; q < P; ++q)
      for (int v = 0; v < kRegsPerPanel; ++v) {
        const int c0 = (it.panel0 + q) * kPanel + v * kLanes;
        if (c0 >= p.out_c) continue;
        const auto dq_col = dq.column(it.n, c0);
        const EpilogueColumn col = epilogue_column(e, it.n, p.out_c, c0);
        for (int r = 0; r < R; ++r) store_with_epilogue(e, col, pix0 + r, p.out_c, dq(acc[r][q][v], dq_col), y);
      }
  }

  // tile<R, P> for R = it.count and P = it.panels.
  template <int P = kTilePanels, int R = pixels_for_panels(P)>
  void tile_of(const TileSchedule::Item& it, const uint32_t* const* base) const {
    if constexpr (P >= 1) {
      if (it.panels < P) return tile_of<P - 1>(it, base);
      if constexpr (R >= 1) {
        if (it.count == R) return tile<R, P>(it, base);
        tile_of<P, R - 1>(it, base);
      }
    }
  }

  void run(ThreadPool& pool) const {
    const TileSchedule schedule(p.batch, p.out_h, p.out_w, (p.out_c + kPanel - 1) / kPanel);
    pool.parallel_for(schedule.items(), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const TileSchedule::Item it = schedule.item(i);
        const uint32_t* base[kMaxTilePixels];
        for (int r = 0; r < it.count; ++r) {
          const int64_t m = it.m0 + r;
          const int64_t oy = m / p.out_w, ox = m % p.out_w;
          base[r] = in.x + ((it.n * in.hp + oy * p.stride - p.pad_top + 1) * in.wp + ox * p.stride - p.pad_left + 1) * in.groups;
        }
        tile_of(it, base);
      }
    });
  }
};

template <class D, class Dequant>
void run_conv(const Conv2dParams& p, const Prepared& in, const PackedConv& w, const ConvEpilogue& e,
              const Dequant& dq, float* y, ThreadPool& pool) {
  const int64_t panel_stride = static_cast<int64_t>(p.kernel) * p.kernel * in.groups * kPanel;
  Conv<D, Dequant>{p, in, static_cast<const uint32_t*>(w.data.data()), panel_stride, e, dq, y}.run(pool);
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA::lowp
