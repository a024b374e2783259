// Where the planner gets named weights from. The planner asks for every tensor it needs by
// its diffusers name and expected shape; a source returns it as float32 or fails with an
// error that names the key.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fusediff::io {
class SafetensorsFile;
}

namespace fusediff::unet {

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The tensor `name` converted to float32. Error(Format) if absent, Error(Shape) if its
  // shape differs from `shape`.
  virtual std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) = 0;
};

// Weights from one or more safetensors files (sharded checkpoints are several files).
class SafetensorsWeights : public WeightSource {
 public:
  explicit SafetensorsWeights(std::vector<std::shared_ptr<io::SafetensorsFile>> files);
  std::vector<float> get(const std::string& name, const std::vector<int64_t>& shape) override;

 private:
  std::vector<std::shared_ptr<io::SafetensorsFile>> files_;
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
