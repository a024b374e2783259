// Where the activation values of a plan live for one input shape: every value gets an offset
// in one arena; values whose lifetimes (first write .. last read, in op order) overlap never
// share bytes. Shared by the CPU and device executors.
#pragma once
#include <cstdint>
#include <vector>

#include "unet/plan.h"

namespace fusediff::unet {

struct ValueLayout {
  std::vector<int64_t> offset;  // floats from the arena's start, per value
  int64_t floats = 0;           // the activations' extent
};

// Offsets aligned to `align_floats`; greedy placement, largest value first. folded[i] (when
// given) marks op i as folded into op i + 1, which reads op i's inputs itself: op i's output
// is never stored (no space), and its inputs stay live until op i + 1.
ValueLayout place_values(const Plan& plan, int batch, int height, int width, int64_t align_floats,
                         const std::vector<bool>& folded = {});

// How many times each value is read: by the ops, and once more for the plan's output.
std::vector<int> read_counts(const Plan& plan);

}  // namespace fusediff::unet
