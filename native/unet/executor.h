// Runs a Plan on the CPU kernel layer. Activation memory comes from arenas planned once per
// input shape (batch, height, width): every value gets a fixed offset, values whose
// lifetimes do not overlap share bytes, and a forward pass allocates nothing after the
// first call for a shape. Several forwards may run at once on one executor: each takes its
// own arena from the shape's free list.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/tensor.h"
#include "core/thread_pool.h"
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

// Upper bound on one arena's bytes; requests above it fail with Error(Resource) before
// anything is allocated. Default: half of physical memory.
int64_t activation_memory_limit();
void set_activation_memory_limit(int64_t bytes);

class Executor {
 public:
  explicit Executor(Plan plan);
  ~Executor();
  const Plan& plan() const { return plan_; }

  TensorPtr forward(const ForwardInput& input);
  // Bytes an arena for this input shape needs (also checks the shape is allowed).
  int64_t arena_bytes(int batch, int height, int width) const;
  // Releases cached arenas (not those in use).
  void trim();

 private:
  struct Layout;
  struct Arena;
  using ShapeKey = std::tuple<int, int, int>;

  Layout layout(int batch, int height, int width) const;
  std::unique_ptr<Arena> acquire(const ShapeKey& key);
  void release(const ShapeKey& key, std::unique_ptr<Arena> arena);
  void validate(const ForwardInput& input) const;
  kernels::AttentionParams attention_params(const AttentionOp& op, int batch, int height, int width) const;
  kernels::GroupNormParams norm_params(const NormOp& op, int batch, int height, int width) const;
  void time_embedding(const ForwardInput& input, Arena& arena, ThreadPool& pool);
  kernels::Conv2dParams conv_params(const ConvOp& conv, int batch, int height, int width) const;
  kernels::Conv2dParams linear_params(const Linear& l, int rows) const;
  int64_t lowp_scratch_floats(const kernels::PackedConv& w, const kernels::Conv2dParams& p) const;
  // The conv kernel of w's precision (float, int8 or bf16).
  void run_conv(const kernels::Conv2dParams& p, const float* x, const kernels::PackedConv& w,
                const kernels::ConvEpilogue& e, float* y, float* scratch, ThreadPool& pool) const;
  void run_linear(const Linear& l, int rows, const float* x, float* y, float* scratch, ThreadPool& pool) const;

  Plan plan_;
  std::mutex mutex_;
  std::map<ShapeKey, std::vector<std::unique_ptr<Arena>>> free_arenas_;
};

}  // namespace fusediff::unet
