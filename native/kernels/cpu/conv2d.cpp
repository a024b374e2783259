// Fast convolution as an implicit GEMM over NHWC activations.
//
//   y[pixel, co] = sum over taps t=(ky,kx) and input channels ci of
//                  x[pixel shifted by t, ci] * W[t, ci, co]
//
// M = output pixels, N = output channels, K = taps x input channels. Weights are packed once
// into panels of 16 output channels, [panel][tap][ci][16], in the order the inner loop reads
// them. Work items are register tiles (register_tile.h: a run of output pixels of one image x
// a group of panels). A tile reads the input rows of its output rows as zero- (or
// circularly) padded copies from a per-thread row cache (RowCache: a thread's next tile
// usually shares those rows), so every tap of every output pixel is in range: the
// microkernel then runs without boundary tests, broadcasting one
// input value per pixel against the panels' weight vectors for each (tap, ci). Unpadded
// convolutions whose window lies inside the input (1x1) read the input rows directly. A
// resampling folded into the read (Conv2dParams::input_resample: nearest 2x upsampling or 2x2
// average pooling) is applied by the row copy. Weights packed for Winograd
// (PackedConv::algorithm) are handed to conv2d_winograd.cpp.
//
// This file is compiled once per ISA (see CMakeLists.txt) with different vector widths and
// tile sizes: FUSEDIFF_ISA names the namespace, FUSEDIFF_VEC (floats per SIMD register),
// FUSEDIFF_TILE_PIXELS and FUSEDIFF_TILE_PANELS size the register tile for that ISA's
// register file (AVX-512: 6 x 4 panels = 24 zmm accumulators, which measured faster than
// 8 x 2 and 12 x 2 on Zen 4; AVX2: 6 x 1 panel = 12 ymm; SSE/NEON: 3 x 1 panel = 12 xmm).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d_winograd.h"
#include "kernels/cpu/conv_epilogue.h"
#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/register_tile.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int kPanel = 16;  // output channels per packed panel
constexpr int kVecsPerPanel = kPanel / kVec;
constexpr int kMaxKernel = 3;

// The input rows one output row reads: rows[ky] points at column 0 of a row laid out as
// [column][ci]; column c holds input column c - col_offset.
struct Window {
  const float* rows[kMaxKernel];
  int64_t col_offset;
};

struct Geometry {
  const Conv2dParams& p;
  int64_t panel_stride;  // floats between consecutive panels of the packed weights
};

// Where each pixel of a tile reads: at[r][ky] is input channel 0 of pixel r's tap (ky, 0);
// tap (ky, kx) is kx * in_c further.
struct TileInput {
  const float* at[kMaxTilePixels][kMaxKernel];
};

// acc (R pixels x P panels) += the taps of the tile's pixels.
template <int R, int P>
inline void accumulate(const Geometry& g, const TileInput& in, const float* w_panels, vec (&acc)[R][P][kVecsPerPanel]) {
  const Conv2dParams& p = g.p;
  for (int ky = 0; ky < p.kernel; ++ky) {
    for (int kx = 0; kx < p.kernel; ++kx) {
      const float* px[R];
      for (int r = 0; r < R; ++r) px[r] = in.at[r][ky] + static_cast<int64_t>(kx) * p.in_c;
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

// The epilogue of kernels.h on every vector of the tile (conv_epilogue.h), then the store.
// The tile's pixels are consecutive in the NHWC output from pix0.
template <int R, int P>
inline void store(const Conv2dParams& p, const ConvEpilogue& e, float* y, int n, int64_t pix0, int co0,
                  vec (&acc)[R][P][kVecsPerPanel]) {
  for (int q = 0; q < P; ++q)
    for (int v = 0; v < kVecsPerPanel; ++v) {
      const int c0 = co0 + q * kPanel + v * kVec;
      if (c0 >= p.out_c) continue;
      const EpilogueColumn col = epilogue_column(e, n, p.out_c, c0);
      for (int r = 0; r < R; ++r) store_with_epilogue(e, col, pix0 + r, p.out_c, acc[r][q][v], y);
    }
}

template <int R, int P>
inline void tile(const Geometry& g, const TileInput& in, const float* w_panels, const ConvEpilogue& e, float* y, int n,
                 int64_t pix0, int co0) {
  vec acc[R][P][kVecsPerPanel];
  for (int r = 0; r < R; ++r)
    for (int q = 0; q < P; ++q)
      for (int v = 0; v < kVecsPerPanel; ++v) acc[r][q][v] = vec{};
  accumulate<R, P>(g, in, w_panels, acc);
  store<R, P>(g.p, e, y, n, pix0, co0, acc);
}

// tile<R, P> for R = count (<= pixels_for_panels(P)) and P = panels (<= kTilePanels).
template <int P = kTilePanels, int R = pixels_for_panels(P)>
inline void tile_of(int panels, int count, const Geometry& g, const TileInput& in, const float* w_panels,
                    const ConvEpilogue& e, float* y, int n, int64_t pix0, int co0) {
  if constexpr (P >= 1) {
    if (panels < P) return tile_of<P - 1>(panels, count, g, in, w_panels, e, y, n, pix0, co0);
    if constexpr (R >= 1) {
      if (count == R) return tile<R, P>(g, in, w_panels, e, y, n, pix0, co0);
      tile_of<P, R - 1>(panels, count, g, in, w_panels, e, y, n, pix0, co0);
    }
  }
}

// The padded input rows of one thread's recent tiles. Consecutive items of a thread are
// mostly consecutive tiles of one image and panel group, whose windows share input rows:
// those are reused, and only new rows are copied (with their zero or circular halo). Rows are
// keyed by image and input row, and the cache by the conv2d call.
class RowCache {
 public:
  // A tile touches two output rows, so up to 2 x kMaxKernel input rows, plus one to replace.
  static constexpr int kKeep = 2 * kMaxKernel;
  static constexpr int kSlots = kKeep + 1;

  // Invalidates the rows of another call and sizes the slots for this one.
  void begin(uint64_t call, int64_t row_floats) {
    if (call_ == call) return;
    call_ = call;
    row_floats_ = row_floats;
    rows_.resize(static_cast<size_t>(row_floats) * kSlots);
    std::fill(std::begin(key_), std::end(key_), int64_t{-1});
  }

  static int64_t key(const Conv2dParams& p, int n, int iy) {
    return static_cast<int64_t>(n) * (p.in_h + 2 * kMaxKernel) + iy + kMaxKernel;
  }

  // The padded copy of input row iy (-pad_top <= iy < in_h + pad_top) of image n. `keep`
  // lists the keys the current tile still needs: their slots are not reused.
  const float* row(const Conv2dParams& p, const float* x_img, int n, int iy, const int64_t (&keep)[kKeep]) {
    const int64_t k = key(p, n, iy);
    int free_slot = -1;
    for (int s = 0; s < kSlots; ++s) {
      if (key_[s] == k) return slot(s);
      // An empty slot (key -1) is free even though `keep` pads unused entries with -1.
      if (free_slot < 0 && (key_[s] < 0 || std::find(std::begin(keep), std::end(keep), key_[s]) == std::end(keep)))
        free_slot = s;
    }
    key_[free_slot] = k;
    fill(p, x_img, iy, slot(free_slot));
    return slot(free_slot);
  }

 private:
  float* slot(int s) { return rows_.data() + s * row_floats_; }

  // Input columns -pad_left .. cols - pad_left - 1 of row iy, zero or wrapped outside.
  void fill(const Conv2dParams& p, const float* x_img, int iy, float* dst) const {
    const int cols = static_cast<int>(row_floats_ / p.in_c);
    if (p.circular) iy = (iy % p.in_h + p.in_h) % p.in_h;
    if (iy < 0 || iy >= p.in_h) {
      std::fill(dst, dst + row_floats_, 0.0f);
      return;
    }
    if (p.circular) {
      for (int col = 0; col < cols; ++col)
        copy_pixels(p, x_img, iy, ((col - p.pad_left) % p.in_w + p.in_w) % p.in_w, 1,
                    dst + static_cast<int64_t>(col) * p.in_c);
      return;
    }
    const int first = std::max(0, p.pad_left), last = std::max(first, std::min(cols, p.in_w + p.pad_left));
    std::fill(dst, dst + static_cast<int64_t>(first) * p.in_c, 0.0f);
    copy_pixels(p, x_img, iy, first - p.pad_left, last - first, dst + static_cast<int64_t>(first) * p.in_c);
    std::fill(dst + static_cast<int64_t>(last) * p.in_c, dst + row_floats_, 0.0f);
  }

  // Input pixels ix0 .. ix0 + count - 1 of row iy (all inside the input), through the folded
  // resampling of kernels.h when there is one.
  static void copy_pixels(const Conv2dParams& p, const float* x_img, int iy, int ix0, int count, float* dst) {
    using R = Conv2dParams::InputResample;
    const int64_t c = p.in_c;
    if (p.input_resample == R::Upsample2x) {  // each source pixel fills two columns
      const float* src = x_img + static_cast<int64_t>(iy / 2) * (p.in_w / 2) * c;
      for (int i = 0; i < count; ++i) std::memcpy(dst + i * c, src + (ix0 + i) / 2 * c, c * sizeof(float));
    } else if (p.input_resample == R::AvgPool2x) {
      const float* row0 = x_img + static_cast<int64_t>(2 * iy) * (2 * p.in_w) * c;
      const float* row1 = row0 + static_cast<int64_t>(2 * p.in_w) * c;
      for (int i = 0; i < count; ++i) {
        const int64_t a = static_cast<int64_t>(2 * (ix0 + i)) * c, b = a + c;
        for (int64_t k = 0; k < c; ++k) dst[i * c + k] = ((row0[a + k] + row0[b + k]) + (row1[a + k] + row1[b + k])) * 0.25f;
      }
    } else {
      std::memcpy(dst, x_img + (static_cast<int64_t>(iy) * p.in_w + ix0) * c, count * c * sizeof(float));
    }
  }

  uint64_t call_ = 0;
  int64_t row_floats_ = 0;
  int64_t key_[kSlots] = {};
  std::vector<float> rows_;
};

// Points the window at the input rows of output row oy: straight into the input when every
// tap of the row is inside it (and nothing is folded into the read), else at padded copies
// from the thread's row cache.
Window make_window(const Conv2dParams& p, const float* x_img, int n, int oy, RowCache& cache,
                   const int64_t (&keep)[RowCache::kKeep]) {
  Window win{};
  const int iy0 = oy * p.stride - p.pad_top;
  const int cols = (p.out_w - 1) * p.stride + p.kernel;  // input columns the row touches, from -pad_left
  const bool rows_inside = iy0 >= 0 && iy0 + p.kernel <= p.in_h;
  const bool cols_inside = p.pad_left == 0 && cols <= p.in_w;
  if (rows_inside && cols_inside && !p.circular && p.input_resample == Conv2dParams::InputResample::None) {
    for (int ky = 0; ky < p.kernel; ++ky) win.rows[ky] = x_img + static_cast<int64_t>(iy0 + ky) * p.in_w * p.in_c;
    win.col_offset = 0;
    return win;
  }
  for (int ky = 0; ky < p.kernel; ++ky) win.rows[ky] = cache.row(p, x_img, n, iy0 + ky, keep);
  win.col_offset = p.pad_left;
  return win;
}

// One work item of the schedule: gathers where its pixels read (from the windows of the at
// most two output rows it touches), then runs its tile.
void run_item(const Geometry& g, const TileSchedule::Item& it, const float* x, const float* w, const ConvEpilogue& e,
              float* y, RowCache& cache) {
  const Conv2dParams& p = g.p;
  const float* x_img = x + it.n * p.source_image_floats();
  const int oy0 = static_cast<int>(it.m0 / p.out_w);
  const int oy1 = static_cast<int>((it.m0 + it.count - 1) / p.out_w);  // oy0 or oy0 + 1
  int64_t keep[RowCache::kKeep];
  for (int i = 0; i < RowCache::kKeep; ++i) {
    const int ky = i % kMaxKernel, oy = i < kMaxKernel ? oy0 : oy1;
    keep[i] = ky < p.kernel ? RowCache::key(p, it.n, oy * p.stride - p.pad_top + ky) : -1;
  }
  const Window win[2] = {make_window(p, x_img, it.n, oy0, cache, keep),
                         oy1 != oy0 ? make_window(p, x_img, it.n, oy1, cache, keep) : Window{}};
  TileInput in;
  for (int r = 0; r < it.count; ++r) {
    const int64_t m = it.m0 + r;
    const Window& wr = win[m / p.out_w != oy0];
    const int64_t col = static_cast<int64_t>(m % p.out_w) * p.stride + wr.col_offset - p.pad_left;
    for (int ky = 0; ky < p.kernel; ++ky) in.at[r][ky] = wr.rows[ky] + col * p.in_c;
  }
  const int64_t pix0 = static_cast<int64_t>(it.n) * p.out_h * p.out_w + it.m0;
  tile_of(it.panels, it.count, g, in, w + it.panel0 * g.panel_stride, e, y, it.n, pix0, it.panel0 * kPanel);
}

}  // namespace

void pack_conv(const float* oihw, int out_c, int in_c, int kernel, ConvAlgorithm algorithm, PackedConv* out) {
  if (algorithm == ConvAlgorithm::Winograd2x2) return pack_conv_winograd(oihw, out_c, in_c, out);
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
  if (w.algorithm == ConvAlgorithm::Winograd2x2) return conv2d_winograd(p, x, w, e, y, pool);
  const Geometry g{p, static_cast<int64_t>(p.kernel) * p.kernel * p.in_c * kPanel};
  const TileSchedule schedule(p.batch, p.out_h, p.out_w, (p.out_c + kPanel - 1) / kPanel);
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = ++calls;
  const int64_t row_floats = static_cast<int64_t>((p.out_w - 1) * p.stride + p.kernel) * p.in_c;
  pool.parallel_for(schedule.items(), [&](int64_t begin, int64_t end) {
    thread_local RowCache cache;
    cache.begin(call, row_floats);
    for (int64_t i = begin; i < end; ++i) run_item(g, schedule.item(i), x, w.data.f32(), e, y, cache);
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
