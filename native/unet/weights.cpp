#include "unet/weights.h"

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
  std::vector<float> read_float32(const std::string& name) const override { return file_->to_float32(*found(name)); }

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

std::vector<float> FileWeights::get(const std::string& name, const std::vector<int64_t>& shape) {
  const Location at = find(name);
  if (at.file) {
    const std::vector<int64_t>& found = *at.file->shape(at.stored_name);
    if (found != shape)
      fail(ErrorCode::Shape, "weight '" + at.stored_name + "' in " + at.file->path() + " has shape " + shape_to_string(found) +
                                 ", the config implies " + shape_to_string(shape));
    return at.file->read_float32(at.stored_name);
  }
  std::string legacy;
  const std::vector<std::string> legacy_names = legacy_weight_names(name);
  for (size_t i = 0; i < legacy_names.size(); ++i) legacy += (i == 0 ? " (nor under its legacy name '" : ", '") + legacy_names[i] + "'";
  if (!legacy.empty()) legacy += ")";
  fail(ErrorCode::Format, "weight '" + name + "' (shape " + shape_to_string(shape) + ") is missing from the model's weight file" +
                              (files_.size() > 1 ? "s" : "") + legacy + "; does config.json match the weights?");
}

std::vector<float> WeightRecorder::get(const std::string& name, const std::vector<int64_t>& shape) {
  entries_.push_back({name, shape});
  return {};
}

}  // namespace fusediff::unet
