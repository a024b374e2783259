// The register tile of the implicit-GEMM convolutions (conv2d.cpp, conv2d_lowp.h) and how a
// convolution's output is cut into tiles and work items.
//
// A tile is a run of consecutive output pixels of one image (in NHWC order, so it may wrap
// from one output row into the next) x a group of panels of 16 output channels; its
// accumulators stay in registers for the whole K loop. CMakeLists.txt sizes it per ISA
// (FUSEDIFF_TILE_PIXELS x FUSEDIFF_TILE_PANELS). Wrapping across rows keeps every tile full
// where a row is not a multiple of the tile's width (32 = 5 x 6 + 2): each tile streams the
// whole packed weight panel from L2, so a 2-pixel tail tile costs a third of a full tile's
// weight traffic for a third of its work.
#pragma once
#include <algorithm>
#include <cstdint>

namespace fusediff::kernels::FUSEDIFF_ISA {

constexpr int kTilePixels = FUSEDIFF_TILE_PIXELS;
constexpr int kTilePanels = FUSEDIFF_TILE_PANELS;

// Pixels per tile when only `panels` panels are left (a layer with fewer output channels than a
// full tile, such as the tile model's 32-channel level with the AVX-512 6 x 4 tile): the same
// accumulator count spread over more pixels (12 x 2, 8 x 3), so that the weights each K step
// loads still feed enough FMAs; at most 12.
constexpr int pixels_for_panels(int panels) {
  return panels > 0 ? std::max(kTilePixels, std::min(12, kTilePixels * kTilePanels / panels)) : kTilePixels;
}
constexpr int kMaxTilePixels = pixels_for_panels(1);

// Work items: (panel group, image, tile), group-major so that a thread's consecutive items
// reuse one packed weight panel group from cache, and within an image in pixel order so that
// they share input rows. Groups have kTilePanels panels but the last, which may have fewer. A
// tile covers at most out_w + 1 pixels, so it touches at most two output rows. Each output
// value is computed by exactly one item, in a fixed order: results do not depend on the
// thread count.
struct TileSchedule {
  struct Item {
    int n, panel0, panels;
    int64_t m0;  // first output pixel, counted from the image's pixel 0
    int count;   // pixels, <= pixels_for_panels(panels)
  };

  TileSchedule(int batch, int out_h, int out_w, int out_panels)
      : batch_(batch),
        m_(static_cast<int64_t>(out_h) * out_w),
        full_groups_(out_panels / kTilePanels),
        rest_(out_panels % kTilePanels),
        len_full_(std::min(pixels_for_panels(kTilePanels), out_w + 1)),
        len_rest_(rest_ ? std::min(pixels_for_panels(rest_), out_w + 1) : 1),
        tiles_full_((m_ + len_full_ - 1) / len_full_),
        tiles_rest_((m_ + len_rest_ - 1) / len_rest_) {}

  int64_t items() const {
    return static_cast<int64_t>(batch_) * (full_groups_ * tiles_full_ + (rest_ ? tiles_rest_ : 0));
  }

  Item item(int64_t i) const {
    const int64_t full_items = static_cast<int64_t>(full_groups_) * batch_ * tiles_full_;
    if (i < full_items) {
      const int64_t per_group = batch_ * tiles_full_;
      const int64_t j = i % per_group, t = j % tiles_full_;
      return make(static_cast<int>(j / tiles_full_), static_cast<int>(i / per_group) * kTilePanels, kTilePanels,
                  t * len_full_, len_full_);
    }
    const int64_t j = i - full_items, t = j % tiles_rest_;
    return make(static_cast<int>(j / tiles_rest_), full_groups_ * kTilePanels, rest_, t * len_rest_, len_rest_);
  }

 private:
  Item make(int n, int panel0, int panels, int64_t m0, int len) const {
    return {n, panel0, panels, m0, static_cast<int>(std::min<int64_t>(len, m_ - m0))};
  }

  int batch_;
  int64_t m_;
  int full_groups_, rest_, len_full_, len_rest_;
  int64_t tiles_full_, tiles_rest_;
};

}  // namespace fusediff::kernels::FUSEDIFF_ISA
