// 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray 2016,
// "Fast Algorithms for Convolutional Neural Networks"), over NHWC activations.
//
// Output pixels are cut into 2x2 tiles. For a tile, its 4x4 input patch d (input rows
// 2ty-1 .. 2ty+2, columns 2tx-1 .. 2tx+2) and the 3x3 kernel g of each (ci, co) pair,
//   Y[co] = A^T ( sum_ci U[ci][co] (.) V[ci] ) A,   U = G g G^T,   V = B^T d B   (4x4 each)
// with
//   B^T = | 1  0 -1  0 |    G = |  1    0    0  |    A^T = | 1  1  1  0 |
//         | 0  1  1  0 |        | 1/2  1/2  1/2 |          | 0  1 -1 -1 |
//         | 0 -1  1  0 |        | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |        |  0    0    1  |
// The sum over ci is elementwise in the 4x4 transform domain, so it is 16 independent GEMMs,
// one per position xi:
//   M[xi][tile][co] = sum_ci V[xi][tile][ci] U[xi][ci][co]
// 16 multiply-adds per (tile, ci, co) where the direct convolution does 4 x 9 = 36: 2.25x
// fewer. The transforms are only additions (and the 1/2s of G, applied once at packing) and
// cost O(channels) per tile against the GEMMs' O(channels^2). Rounding: V and Y are short
// sums of +-1 terms, so results differ from the direct convolution by a few ulps of the
// inputs' magnitude (tested against the reference on every table).
//
// Work items are blocks of tiles of one image. An item transforms its tiles' patches into
// V (thread-local, [xi][tile][ci]), then per panel of 16 output channels runs the 16 GEMMs
// (register tiles of kRows tiles x 16 channels, broadcasting V against U's panel vectors)
// into M, and transforms M back to 2x2 output pixels, through the epilogue of kernels.h.
// Each output is computed by exactly one item in a fixed order: results do not depend on the
// thread count. Compiled once per ISA like conv2d.cpp.
#include <algorithm>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/register_tile.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int kPanel = 16;  // output channels per packed panel
constexpr int kVecsPerPanel = kPanel / kVec;
constexpr int kXi = 16;     // positions of the 4x4 transform domain
// V of one block (kXi x tiles x in_c floats) is kept near kBlockFloats x kXi floats (384 KiB):
// it and the block's M stay in L2 while the weights stream past.
constexpr int kBlockFloats = 6144;

using Resample = Conv2dParams::InputResample;

// U = G g G^T of one (co, ci) pair, g = the 3x3 kernel in PyTorch order.
void transform_kernel(const float* g, float (&u)[4][4]) {
  float t[4][3];  // G g
  for (int j = 0; j < 3; ++j) {
    t[0][j] = g[j];
    t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
    t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
    t[3][j] = g[6 + j];
  }
  for (int i = 0; i < 4; ++i) {
    u[i][0] = t[i][0];
    u[i][1] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
    u[i][2] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
    u[i][3] = t[i][2];
  }
}

// Where the input pixels of one 4x4 patch live, as the conv sees its input (kernels.h):
// zero padding or circular wrap, and a folded resampling. at[i][j] is null for a zero pixel;
// for AvgPool2x it is the top-left of the 2x2 source block and `row` the source row stride.
struct Patch {
  const float* at[4][4];
  int64_t row;
};

Patch patch(const Conv2dParams& p, const float* x_img, int iy0, int ix0) {
  Patch pt{};
  const int64_t c = p.in_c;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      int iy = iy0 + i, ix = ix0 + j;
      if (p.circular) {
        iy = (iy % p.in_h + p.in_h) % p.in_h;
        ix = (ix % p.in_w + p.in_w) % p.in_w;
      } else if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) {
        pt.at[i][j] = nullptr;
        continue;
      }
      switch (p.input_resample) {
        case Resample::Upsample2x: pt.at[i][j] = x_img + (static_cast<int64_t>(iy / 2) * (p.in_w / 2) + ix / 2) * c; break;
        case Resample::AvgPool2x: pt.at[i][j] = x_img + (static_cast<int64_t>(2 * iy) * (2 * p.in_w) + 2 * ix) * c; break;
        default: pt.at[i][j] = x_img + (static_cast<int64_t>(iy) * p.in_w + ix) * c;
      }
    }
  pt.row = static_cast<int64_t>(2 * p.in_w) * c;
  return pt;
}

// Channels [c, c + kVec) of one patch pixel; AvgPool2x sums in avg_pool2x2's order.
template <Resample R>
inline vec pixel(const Patch& pt, int i, int j, int64_t in_c, int c) {
  const float* s = pt.at[i][j];
  if (s == nullptr) return vec{};
  if constexpr (R == Resample::AvgPool2x) {
    return ((load(s + c) + load(s + in_c + c)) + (load(s + pt.row + c) + load(s + pt.row + in_c + c))) * 0.25f;
  } else {
    return load(s + c);
  }
}

// V[xi][t][:] = B^T d B for the patch of tile t; v points at V[0][t][0], xi_stride floats apart.
template <Resample R>
void transform_patch(const Patch& pt, int in_c, float* v, int64_t xi_stride) {
  for (int c = 0; c < in_c; c += kVec) {
    vec e[4][4];  // B^T d
    for (int j = 0; j < 4; ++j) {
      const vec d0 = pixel<R>(pt, 0, j, in_c, c), d1 = pixel<R>(pt, 1, j, in_c, c);
      const vec d2 = pixel<R>(pt, 2, j, in_c, c), d3 = pixel<R>(pt, 3, j, in_c, c);
      e[0][j] = d0 - d2;
      e[1][j] = d1 + d2;
      e[2][j] = d2 - d1;
      e[3][j] = d1 - d3;
    }
    for (int i = 0; i < 4; ++i) {
      const vec f[4] = {e[i][0] - e[i][2], e[i][1] + e[i][2], e[i][2] - e[i][1], e[i][1] - e[i][3]};
      for (int j = 0; j < 4; ++j) store(v + (i * 4 + j) * xi_stride + c, f[j]);
    }
  }
}

// One panel (16 output channels) per GEMM pass, with as many tiles per register tile as
// pixels_for_panels(1) allows (12 on AVX-512): the pass's U slab (in_c x 16 floats, 8 KiB at
// 128 channels) stays in L1 beside the V rows it meets. The direct convolution's 4-panel
// AVX-512 tile, whose slab is four times larger, measured 5-15 % slower here
// (fusediff_bench_kernels: 128 -> 128 @32x32 b8 165-168 % vs 174-176 % of peak,
// direct-equivalent; 64 -> 64 @16x16 b16 139-149 % vs 161-165 %; 256 and 384 channels even).
constexpr int kRows = pixels_for_panels(1);

// M rows t .. t+R-1 of one xi and one panel: sum_ci V[t + r][ci] U[ci][:].
// v: V[xi][t][0] (rows in_c apart); u: U[xi][panel][0][0]; m: M[xi][t][0] (rows kPanel apart).
template <int R>
void gemm_tile(const float* v, int in_c, const float* u, float* m) {
  vec acc[R][kVecsPerPanel] = {};
  const float* w = u;
  for (int ci = 0; ci < in_c; ++ci, w += kPanel) {
    vec wv[kVecsPerPanel];
#pragma GCC unroll 4
    for (int k = 0; k < kVecsPerPanel; ++k) wv[k] = load(w + k * kVec);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float a = v[static_cast<int64_t>(r) * in_c + ci];
#pragma GCC unroll 4
      for (int k = 0; k < kVecsPerPanel; ++k) acc[r][k] += wv[k] * a;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < kVecsPerPanel; ++k) store(m + r * kPanel + k * kVec, acc[r][k]);
}

// gemm_tile<R> for R = rows (<= kRows).
template <int R = kRows>
void gemm_tile_of(int rows, const float* v, int in_c, const float* u, float* m) {
  if constexpr (R >= 1) {
    if (rows == R) return gemm_tile<R>(v, in_c, u, m);
    gemm_tile_of<R - 1>(rows, v, in_c, u, m);
  }
}

// Work items: blocks of `block` consecutive tiles (row-major over the image's tile grid) of one
// image. Blocks are as long as kBlockFloats allows, but short enough to give every thread about
// four items (a 16x16 image has only 64 tiles). An item computes its tiles' outputs whatever the
// block length, in the same order: the split does not change results.
struct Blocks {
  int tiles_w, tiles_per_image, block, per_image;  // tiles per block and blocks per image

  Blocks(const Conv2dParams& p, int threads)
      : tiles_w((p.out_w + 1) / 2), tiles_per_image(((p.out_h + 1) / 2) * tiles_w) {
    const int longest = std::max(1, kBlockFloats / p.in_c / kRows) * kRows;
    const int64_t tiles = static_cast<int64_t>(p.batch) * tiles_per_image;
    const int64_t balanced = (tiles + 4 * threads - 1) / (4 * threads);
    block = static_cast<int>(std::clamp<int64_t>((balanced + kRows - 1) / kRows * kRows, kRows, longest));
    per_image = (tiles_per_image + block - 1) / block;
  }
};

// Y = A^T M A for tiles t0 .. t0+count-1 of image n, output channels co0 .. co0 + 15, through
// the epilogue. m: M[0][0][0] of this panel, rows kPanel apart, xi_stride floats per xi.
void output_tiles(const Conv2dParams& p, const Blocks& b, const ConvEpilogue& e, int n, int t0, int count, int co0,
                  const float* m, int64_t xi_stride, float* y) {
  for (int c = 0; c < kPanel; c += kVec) {
    const EpilogueColumn col = epilogue_column(e, n, p.out_c, co0 + c);
    for (int t = 0; t < count; ++t) {
      const int ty = (t0 + t) / b.tiles_w, tx = (t0 + t) % b.tiles_w;
      const float* mt = m + static_cast<int64_t>(t) * kPanel + c;
      vec r[2][4];  // A^T M
      for (int j = 0; j < 4; ++j) {
        const vec m0 = load(mt + (0 * 4 + j) * xi_stride), m1 = load(mt + (1 * 4 + j) * xi_stride);
        const vec m2 = load(mt + (2 * 4 + j) * xi_stride), m3 = load(mt + (3 * 4 + j) * xi_stride);
        r[0][j] = m0 + m1 + m2;
        r[1][j] = m1 - m2 - m3;
      }
      for (int i = 0; i < 2; ++i) {
        const int oy = 2 * ty + i;
        if (oy >= p.out_h) break;
        const vec out[2] = {r[i][0] + r[i][1] + r[i][2], r[i][1] - r[i][2] - r[i][3]};
        for (int k = 0; k < 2; ++k) {
          const int ox = 2 * tx + k;
          if (ox >= p.out_w) break;
          const int64_t pix = (static_cast<int64_t>(n) * p.out_h + oy) * p.out_w + ox;
          store_with_epilogue(e, col, pix, p.out_c, out[k], y);
        }
      }
    }
  }
}

}  // namespace

// U[xi][panel][ci][16]: per xi, the direct convolution's panel layout with one tap.
void pack_conv_winograd(const float* oihw, int out_c, int in_c, PackedConv* out) {
  const int panels = out_c / kPanel;
  const int64_t xi_floats = static_cast<int64_t>(panels) * in_c * kPanel;
  out->data = AlignedBuffer(static_cast<size_t>(kXi * xi_floats) * sizeof(float));
  float* dst = out->data.f32();
  for (int co = 0; co < out_c; ++co)
    for (int ci = 0; ci < in_c; ++ci) {
      float u[4][4];
      transform_kernel(oihw + (static_cast<int64_t>(co) * in_c + ci) * 9, u);
      for (int xi = 0; xi < kXi; ++xi)
        dst[xi * xi_floats + (static_cast<int64_t>(co / kPanel) * in_c + ci) * kPanel + co % kPanel] = u[xi / 4][xi % 4];
    }
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = 3;
  out->algorithm = ConvAlgorithm::Winograd2x2;
}

void conv2d_winograd(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                     ThreadPool& pool) {
  if (p.kernel != 3 || p.stride != 1 || p.pad_top != 1 || p.pad_left != 1 || p.out_h != p.in_h || p.out_w != p.in_w ||
      p.in_c % 16 != 0 || p.out_c % kPanel != 0 || w.algorithm != ConvAlgorithm::Winograd2x2)
    fail(ErrorCode::Internal, "Winograd conv: needs a 3x3, stride-1, 'same'-padded conv with channels in multiples of 16");
  const Blocks b(p, pool.num_threads());
  const int panels = p.out_c / kPanel;
  const int64_t panel_stride = static_cast<int64_t>(p.in_c) * kPanel;
  const int64_t u_xi_stride = panels * panel_stride;
  pool.parallel_for(static_cast<int64_t>(p.batch) * b.per_image, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> v, m;
    const int64_t v_xi = static_cast<int64_t>(b.block) * p.in_c, m_xi = static_cast<int64_t>(b.block) * kPanel;
    v.resize(static_cast<size_t>(kXi * v_xi));
    m.resize(static_cast<size_t>(kXi * m_xi));
    for (int64_t item = begin; item < end; ++item) {
      const int n = static_cast<int>(item / b.per_image);
      const int t0 = static_cast<int>(item % b.per_image) * b.block, count = std::min(b.block, b.tiles_per_image - t0);
      const float* x_img = x + n * p.source_image_floats();
      for (int t = 0; t < count; ++t) {
        const int ty = (t0 + t) / b.tiles_w, tx = (t0 + t) % b.tiles_w;
        const Patch pt = patch(p, x_img, 2 * ty - 1, 2 * tx - 1);
        float* vt = v.data() + static_cast<int64_t>(t) * p.in_c;
        switch (p.input_resample) {
          case Resample::Upsample2x: transform_patch<Resample::Upsample2x>(pt, p.in_c, vt, v_xi); break;
          case Resample::AvgPool2x: transform_patch<Resample::AvgPool2x>(pt, p.in_c, vt, v_xi); break;
          default: transform_patch<Resample::None>(pt, p.in_c, vt, v_xi);
        }
      }
      for (int panel = 0; panel < panels; ++panel) {
        for (int xi = 0; xi < kXi; ++xi) {
          const float* u = w.data.f32() + xi * u_xi_stride + panel * panel_stride;
          for (int t = 0; t < count; t += kRows)
            gemm_tile_of(std::min(kRows, count - t), v.data() + xi * v_xi + static_cast<int64_t>(t) * p.in_c, p.in_c, u,
                         m.data() + xi * m_xi + static_cast<int64_t>(t) * kPanel);
        }
        output_tiles(p, b, e, n, t0, count, panel * kPanel, m.data(), m_xi, y);
      }
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
