#include "unet/weights.h"

#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"

namespace fusediff::unet {

SafetensorsWeights::SafetensorsWeights(std::vector<std::shared_ptr<io::SafetensorsFile>> files)
    : files_(std::move(files)) {}

std::vector<float> SafetensorsWeights::get(const std::string& name, const std::vector<int64_t>& shape) {
  for (const auto& file : files_) {
    const io::TensorInfo* info = file->find(name);
    if (!info) continue;
    if (info->shape != shape)
      fail(ErrorCode::Shape, "weight '" + name + "' in " + file->path() + " has shape " + shape_to_string(info->shape) +
                                 ", the config implies " + shape_to_string(shape));
    return file->to_float32(*info);
  }
  fail(ErrorCode::Format, "weight '" + name + "' (shape " + shape_to_string(shape) +
                              ") is missing from the model's safetensors file" + (files_.size() > 1 ? "s" : "") +
                              "; does config.json match the weights?");
}

std::vector<float> WeightRecorder::get(const std::string& name, const std::vector<int64_t>& shape) {
  entries_.push_back({name, shape});
  return {};
}

}  // namespace fusediff::unet
