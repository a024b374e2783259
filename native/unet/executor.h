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
#include "unet/runner.h"

namespace fusediff::unet {


// Upper bound on one arena's bytes; requests above it fail with Error(Resource) before
// anything is allocated. Default: half of physical memory.
int64_t activation_memory_limit();
void set_activation_memory_limit(int64_t bytes);

class Executor final : public Runner {
 public:
  explicit Executor(Plan plan);
  ~Executor() override;
  const Plan& plan() const override { return plan_; }
  std::string kernels_name() const override { return plan_.kernels->name; }

  TensorPtr forward(const ForwardInput& input) override;
  // Bytes an arena for this input shape needs (also checks the shape is allowed).
  int64_t arena_bytes(int batch, int height, int width) const override;
  // Releases cached arenas (not those in use).
  void trim() override;

 private:
  struct Layout;
  struct Arena;
  using ShapeKey = std::tuple<int, int, int>;

  Layout layout(int batch, int height, int width) const;
  std::unique_ptr<Arena> acquire(const ShapeKey& key);
  void release(const ShapeKey& key, std::unique_ptr<Arena> arena);
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
  // folded_[i]: op i is a resampling that the float conv at i + 1 applies as it reads its
  // input (Conv2dParams::input_resample); op i is skipped and its output not stored.
  std::vector<bool> folded_;
  std::mutex mutex_;
  std::map<ShapeKey, std::vector<std::unique_ptr<Arena>>> free_arenas_;
};

}  // namespace fusediff::unet
