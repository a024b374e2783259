// Runs a Plan on a DeviceBackend (backend/device_backend.h): weights are packed and uploaded
// once at construction, activations live in one device arena per input shape (the same
// value placement as the CPU executor, unet/value_layout.h), and a forward is: upload the
// NCHW sample, the time embedding, one backend call per op of the plan, download the NCHW
// output. The host keeps only the plan's structure (the packed host weights are dropped).
//
// Forwards on one executor are serialised (one device stream); the device does the work.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#include "backend/device_backend.h"
#include "unet/runner.h"

namespace fusediff::unet {

class DeviceExecutor final : public Runner {
 public:
  // `plan` must hold PyTorch-layout weights (built with the reference kernel table).
  DeviceExecutor(Plan plan, std::unique_ptr<backend::DeviceBackend> backend);
  ~DeviceExecutor() override;

  const Plan& plan() const override { return plan_; }
  std::string kernels_name() const override { return backend_->name(); }
  TensorPtr forward(const ForwardInput& input) override;
  int64_t arena_bytes(int batch, int height, int width) const override;
  void trim() override;

 private:
  struct Layout;
  struct Linear;
  struct OpWeights;
  using ShapeKey = std::tuple<int, int, int>;

  Layout layout(int batch, int height, int width) const;
  Linear upload_linear(const unet::Linear& l);
  void run_linear(const Linear& l, int rows, const float* x, float* y);
  void time_embedding(const ForwardInput& in, const Layout& l, float* arena);
  void run_op(size_t index, const Layout& l, float* arena, bool circular);

  Plan plan_;
  std::unique_ptr<backend::DeviceBackend> backend_;
  std::vector<OpWeights> op_weights_;  // per op of the plan
  std::unique_ptr<Linear> time_1_, time_2_, class_1_, class_2_, temb_proj_;
  int fused_attention_ = 0;  // fdc_attention_params::fused
  std::mutex mutex_;  // one forward at a time
  std::map<ShapeKey, backend::DeviceBuffer> arenas_;
};

}  // namespace fusediff::unet
