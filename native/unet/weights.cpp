#include "unet/weights.h"

#include <cmath>

#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "io/torch_bin.h"
#include "unet/legacy_names.h"

namespace fusediff::unet {
namespace {

class SafetensorsWeightFile : public WeightFile {
 public:
  explicit SafetensorsWeightFile(const std::string& path) : file_(io::SafetensorsFile::open(path)) {}
  const std::string& path() const override { return file_->path(); }
  const std::vector<int64_t>* shape(const std::string& name) const override {
    const io::TensorInfo* info = file_->find(name);
    return info ? &info->shape : nullptr;
  }
  std::vector<float> read_float32(const std::string& name) const override {
    const io::TensorInfo* info = found(name);
    if (info->dtype == io::DType::I8)
      fail(ErrorCode::Format, "weight '" + name + "' in " + file_->path() + " is int8 but has no '" + name +
                                  "_scale' beside it (a fusediff-int8 file stores '<layer>.weight' with '<layer>.weight_scale')");
    return file_->to_float32(*info);
  }
  bool is_int8(const std::string& name) const override { return found(name)->dtype == io::DType::I8; }
  bool is_float32(const std::string& name) const override { return found(name)->dtype == io::DType::F32; }
  std::vector<int8_t> read_int8(const std::string& name) const override {
    const io::TensorInfo* info = found(name);
    const uint8_t* src = file_->data(*info);
    return std::vector<int8_t>(reinterpret_cast<const int8_t*>(src), reinterpret_cast<const int8_t*>(src) + info->numel());
  }

 private:
  const io::TensorInfo* found(const std::string& name) const {
    const io::TensorInfo* info = file_->find(name);
    if (!info) fail(ErrorCode::Argument, "weight '" + name + "' is not in " + file_->path());
    return info;
  }
  std::shared_ptr<io::SafetensorsFile> file_;
};

class TorchBinWeightFile : public WeightFile {
 public:
  explicit TorchBinWeightFile(const std::string& path) : file_(io::TorchBinFile::open(path)) {}
  const std::string& path() const override { return file_->path(); }
  const std::vector<int64_t>* shape(const std::string& name) const override {
    const io::TorchTensor* tensor = file_->find(name);
    return tensor ? &tensor->shape : nullptr;
  }
  std::vector<float> read_float32(const std::string& name) const override { return file_->to_float32(*found(name)); }

 private:
  const io::TorchTensor* found(const std::string& name) const {
    const io::TorchTensor* tensor = file_->find(name);
    if (!tensor) fail(ErrorCode::Argument, "weight '" + name + "' is not in " + file_->path());
    return tensor;
  }
  std::shared_ptr<io::TorchBinFile> file_;
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

std::shared_ptr<WeightFile> open_weight_file(const std::string& path) {
  if (ends_with(path, ".bin")) return std::make_shared<TorchBinWeightFile>(path);
  return std::make_shared<SafetensorsWeightFile>(path);
}

FileWeights::FileWeights(std::vector<std::shared_ptr<WeightFile>> files) : files_(std::move(files)) {}

FileWeights::Location FileWeights::find(const std::string& name) const {
  std::vector<std::string> names{name};
  for (std::string& legacy : legacy_weight_names(name)) names.push_back(std::move(legacy));
  for (const std::string& candidate : names)
    for (const auto& file : files_)
      if (file->shape(candidate)) return {file.get(), candidate};
  return {};
}

std::pair<const WeightFile*, std::string> FileWeights::locate(const std::string& name, const std::vector<int64_t>& shape) {
  const Location at = find(name);
  if (at.file) {
    const std::vector<int64_t>& found = *at.file->shape(at.stored_name);
    if (found != shape)
      fail(ErrorCode::Shape, "weight '" + at.stored_name + "' in " + at.file->path() + " has shape " + shape_to_string(found) +
                                 ", the config implies " + shape_to_string(shape));
    return {at.file, at.stored_name};
  }
  std::string legacy;
  const std::vector<std::string> legacy_names = legacy_weight_names(name);
  for (size_t i = 0; i < legacy_names.size(); ++i) legacy += (i == 0 ? " (nor under its legacy name '" : ", '") + legacy_names[i] + "'";
  if (!legacy.empty()) legacy += ")";
  fail(ErrorCode::Format, "weight '" + name + "' (shape " + shape_to_string(shape) + ") is missing from the model's weight file" +
                              (files_.size() > 1 ? "s" : "") + legacy + "; does config.json match the weights?");
}

std::vector<float> FileWeights::get(const std::string& name, const std::vector<int64_t>& shape) {
  auto [file, stored] = locate(name, shape);
  if (!file->is_int8(stored)) {
    if (file->shape(stored + "_scale"))
      fail(ErrorCode::Format, "weight '" + stored + "' in " + file->path() + " has a '" + stored +
                                  "_scale' but is not int8 (a fusediff-int8 file stores quantized weights as I8)");
    return file->read_float32(stored);
  }
  std::vector<int8_t> q;
  std::vector<float> scale;
  get_int8(name, shape, &q, &scale);
  std::vector<float> w(q.size());
  const size_t per = shape.empty() || scale.empty() ? 0 : q.size() / scale.size();
  for (size_t i = 0; i < q.size(); ++i) w[i] = static_cast<float>(q[i]) * scale[i / per];
  return w;
}

bool FileWeights::get_int8(const std::string& name, const std::vector<int64_t>& shape, std::vector<int8_t>* q,
                           std::vector<float>* scale) {
  auto [file, stored] = locate(name, shape);
  if (!file->is_int8(stored)) return false;
  const std::string where = "int8 weight '" + stored + "' in " + file->path();
  if (shape.size() < 2) fail(ErrorCode::Format, where + ": only convolution and linear weights may be int8");
  const std::string scale_name = stored + "_scale";
  const std::vector<int64_t>* scale_shape = file->shape(scale_name);
  if (!scale_shape) fail(ErrorCode::Format, where + " has no '" + scale_name + "' (its per-output-channel scales)");
  if (!file->is_float32(scale_name)) fail(ErrorCode::Format, "'" + scale_name + "' in " + file->path() + " must be F32");
  if (*scale_shape != std::vector<int64_t>{shape[0]})
    fail(ErrorCode::Format, "'" + scale_name + "' in " + file->path() + " has shape " + shape_to_string(*scale_shape) +
                                ", expected [" + std::to_string(shape[0]) + "] (one scale per output channel)");
  *scale = file->read_float32(scale_name);
  for (size_t i = 0; i < scale->size(); ++i) {
    const float s = (*scale)[i];
    if (!(s > 0.0f) || !std::isfinite(s))
      fail(ErrorCode::Format, "'" + scale_name + "' in " + file->path() + " has the scale " + std::to_string(s) +
                                  " at output channel " + std::to_string(i) + " (scales must be finite and > 0)");
  }
  *q = file->read_int8(stored);
  for (size_t i = 0; i < q->size(); ++i)
    if ((*q)[i] == -128)
      fail(ErrorCode::Format, where + " holds -128 at element " + std::to_string(i) +
                                  " (fusediff-int8 weights are symmetric, in [-127, 127])");
  return true;
}

std::vector<float> WeightRecorder::get(const std::string& name, const std::vector<int64_t>& shape) {
  entries_.push_back({name, shape});
  return {};
}

}  // namespace fusediff::unet
