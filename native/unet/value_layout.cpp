#include "unet/value_layout.h"

#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

namespace fusediff::unet {

namespace {

// Operands of an op, for liveness: inputs first, output last.
struct Operands {
  std::vector<int> in;
  int out;
};
Operands operands(const Op& op) {
  return std::visit(
      [](const auto& o) -> Operands {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, ConvOp>) {
          if (o.residual >= 0) return {{o.in, o.residual}, o.out};
          return {{o.in}, o.out};
        } else if constexpr (std::is_same_v<T, ConcatOp>) {
          return {{o.a, o.b}, o.out};
        } else {
          return {{o.in}, o.out};
        }
      },
      op);
}

}  // namespace

std::vector<int> read_counts(const Plan& plan) {
  std::vector<int> reads(plan.values.size(), 0);
  for (const Op& op : plan.ops)
    for (int v : operands(op).in) ++reads[v];
  ++reads[plan.output];
  return reads;
}

ValueLayout place_values(const Plan& plan, int batch, int height, int width, int64_t align_floats,
                         const std::vector<bool>& folded) {
  auto align = [&](int64_t n) { return (n + align_floats - 1) / align_floats * align_floats; };
  ValueLayout out;
  const size_t nv = plan.values.size();
  std::vector<int64_t> size(nv);
  for (size_t v = 0; v < nv; ++v) {
    const Value& val = plan.values[v];
    const int64_t h = height >> val.scale, w = width >> val.scale;
    size[v] = align(static_cast<int64_t>(batch) * h * w * val.channels);
  }
  // Lifetimes in op indices: defined at `first`, last read at `last`.
  std::vector<int> first(nv, -1), last(nv, -1);
  first[plan.input] = -1;
  last[plan.input] = 0;
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    Operands o = operands(plan.ops[i]);
    const bool fold = i < folded.size() && folded[i];
    for (int v : o.in) last[v] = std::max(last[v], static_cast<int>(fold ? i + 1 : i));
    if (fold) {
      size[o.out] = 0;
      continue;
    }
    first[o.out] = static_cast<int>(i);
    last[o.out] = std::max(last[o.out], static_cast<int>(i));
  }
  last[plan.output] = static_cast<int>(plan.ops.size());
  // Greedy placement, largest first: each value takes the lowest offset that does not
  // overlap any placed value whose lifetime intersects its own.
  std::vector<int> order(nv);
  for (size_t v = 0; v < nv; ++v) order[v] = static_cast<int>(v);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return size[a] > size[b]; });
  out.offset.assign(nv, 0);
  std::vector<int> placed;
  for (int v : order) {
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int u : placed)
      if (first[u] <= last[v] && first[v] <= last[u]) busy.push_back({out.offset[u], out.offset[u] + size[u]});
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& [b, e] : busy) {
      if (at + size[v] <= b) break;
      at = std::max(at, e);
    }
    out.offset[v] = at;
    out.floats = std::max(out.floats, at + size[v]);
    placed.push_back(v);
  }
  return out;
}

}  // namespace fusediff::unet
