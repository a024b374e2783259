// Where the planner gets named weights from. The planner asks for every tensor it needs by
// its diffusers name and expected shape; a source returns it as float32 or fails with an
// error that names the key.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fusediff::unet {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The tensor `name` converted to float32. Error(Format) if absent, Error(Shape) if its
  // shape differs from `shape`.
  virtual std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) = 0;
  // The int8 form of the weight `name` (a "<layer>.weight") when the source stores it
  // quantized (fusediff-int8: I8 weight + F32 "<layer>.weight_scale" of shape [out]); false
  // when it stores it as float. Errors: Shape as get(), Format for a missing, non-F32,
  // misshapen, non-finite or non-positive scale, or an int8 value of -128.
  virtual bool get_int8(const std::string& name, const std::vector<int64_t>& shape, std::vector<int8_t>* q,
                        std::vector<float>* scale) {
    return false;
  }
};

// One weight file as the loader sees it, whatever its format.
class WeightFile {
 public:
  virtual ~WeightFile() = default;
  virtual const std::string& path() const = 0;
  // The shape of the tensor `name`, or nullptr when the file has no tensor of that name.
  virtual const std::vector<int64_t>* shape(const std::string& name) const = 0;
  // The tensor `name` (one that shape() finds) as float32.
  virtual std::vector<float> read_float32(const std::string& name) const = 0;
  // Whether the tensor `name` (one that shape() finds) is stored as int8 / as float32.
  virtual bool is_int8(const std::string& name) const { return false; }
  virtual bool is_float32(const std::string& name) const { return false; }
  // Its int8 values (is_int8 only).
  virtual std::vector<int8_t> read_int8(const std::string& name) const { return {}; }
};

// Opens a weight file by its extension: `.bin` is a PyTorch checkpoint, read by the
// restricted reader that executes nothing (io/torch_bin.h); anything else is safetensors.
std::shared_ptr<WeightFile> open_weight_file(const std::string& path);

// Weights from one or more files (sharded checkpoints are several), found by their diffusers
// name or, when a file has none of that name, by a legacy name (legacy_names.h).
class FileWeights : public WeightSource {
 public:
  explicit FileWeights(std::vector<std::shared_ptr<WeightFile>> files);
  // An int8 weight (stored quantized) comes back dequantized: q * scale per output channel.
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) override;
  bool get_int8(const std::string& name, const std::vector<int64_t>& shape, std::vector<int8_t>* q,
                std::vector<float>* scale) override;

  // Where the tensor `name` lives: the file and the name it has there (its diffusers name or
  // a legacy one), or {nullptr, ""} when no file has it. For readers that want the original
  // tensors (the ONNX exporter) rather than a plan.
  struct Location {
    const WeightFile* file = nullptr;
    std::string stored_name;
  };
  Location find(const std::string& name) const;

 private:
  // The file and name (current or legacy) holding `name`, checked against `shape`.
  std::pair<const WeightFile*, std::string> locate(const std::string& name, const std::vector<int64_t>& shape);
  std::vector<std::shared_ptr<WeightFile>> files_;
};

// Records what is asked for and returns nothing: lists a config's expected weights
// without any file (test helpers and benchmarks write random weights from this list).
class WeightRecorder : public WeightSource {
 public:
  struct Entry {
    std::string name;
    std::vector<int64_t> shape;
  };
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) override;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
};

}  // namespace fusediff::unet
