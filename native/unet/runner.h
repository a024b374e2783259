// What runs a Plan: the CPU executor (executor.h) or the device executor (device_executor.h).
// The binding holds a Runner and does not care which.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "unet/plan.h"

namespace fusediff::unet {

struct ForwardInput {
  const Tensor* sample = nullptr;   // [N, in_channels, H, W]
  std::vector<double> timesteps;    // one per image
  std::vector<int64_t> class_ids;   // ClassEmbed::Embedding: one per image
  std::vector<double> class_values; // ClassEmbed::Timestep: one per image
  std::vector<float> class_vectors; // ClassEmbed::Identity: N x time_dim
  // Convolutions pad circularly instead of with zeros: the output tiles seamlessly
  // (diffusers' padding_mode="circular" on every padded conv).
  bool circular_padding = false;
  // When set, receives the wall time of each op of the plan, in plan order (profiling).
  std::vector<double>* op_seconds = nullptr;
};

// Checks a forward's input against the plan (shape, timesteps, class conditioning);
// throws Error(Shape / Argument / Resource).
void validate_forward(const Plan& plan, const ForwardInput& input);

class Runner {
 public:
  virtual ~Runner() = default;
  virtual const Plan& plan() const = 0;
  // The kernels in use: a CPU kernel path ("avx512", ...) or a device ("cuda:0 NVIDIA H200 (tf32)").
  virtual std::string kernels_name() const = 0;
  // The output as a host tensor [N, out_channels, H, W].
  virtual TensorPtr forward(const ForwardInput& input) = 0;
  // Bytes of activation memory one forward at this shape needs (also checks the shape).
  virtual int64_t arena_bytes(int batch, int height, int width) const = 0;
  // Releases cached activation memory (not memory in use).
  virtual void trim() = 0;
};

}  // namespace fusediff::unet
