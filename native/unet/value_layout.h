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

// Offsets aligned to `align_floats`; greedy placement, largest value first.
ValueLayout place_values(const Plan& plan, int batch, int height, int width, int64_t align_floats);

}  // namespace fusediff::unet
