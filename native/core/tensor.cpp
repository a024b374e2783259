#include "core/tensor.h"

#include "core/error.h"

namespace fusediff {

int64_t checked_numel(const std::vector<int64_t>& shape, const std::string& what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) fail(ErrorCode::Shape, what + ": negative dimension in shape " + shape_to_string(shape));
    if (d != 0 && n > kMaxTensorElements / d)
      fail(ErrorCode::Resource, what + ": shape " + shape_to_string(shape) + " has more than 2^31 elements");
    n *= d;
  }
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Tensor::Tensor(std::vector<int64_t> shape)
    : shape_(std::move(shape)),
      numel_(checked_numel(shape_, "tensor")),
      buffer_(static_cast<size_t>(numel_) * sizeof(float)) {}

}  // namespace fusediff
