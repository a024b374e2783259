// A dense float32 tensor in engine memory. The public API speaks NCHW; kernels may keep
// their own layouts internally, but a Tensor handed across the API is always row-major
// in the order of `shape`.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/aligned_buffer.h"

namespace fusediff {

// Largest element count one tensor may have (2^31 floats = 8 GiB); checked before allocation.
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

// Product of dims with overflow and sign checks; throws Error(Shape) naming `what`.
int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what);
std::string shape_to_string(const std::vector<int64_t>& shape);

class Tensor {
 public:
  explicit Tensor(std::vector<int64_t> shape);
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t numel() const { return numel_; }
  float* data() { return buffer_.f32(); }
  const float* data() const { return buffer_.f32(); }
  // The CUDA device whose forward produced this tensor (its data is a host copy), or -1. A
  // sampler step on a model output runs its kernel where the model ran (binding/step_wrap.cpp).
  int source_device() const { return source_device_; }
  void set_source_device(int device) { source_device_ = device; }

 private:
  std::vector<int64_t> shape_;
  int64_t numel_;
  AlignedBuffer buffer_;
  int source_device_ = -1;
};

using TensorPtr = std::shared_ptr<Tensor>;

}  // namespace fusediff
