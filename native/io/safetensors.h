// Reader and writer of the safetensors format: an 8-byte little-endian header length N,
// N bytes of UTF-8 JSON describing every tensor, then the data section of raw
// little-endian tensor bytes. Files come from the internet, so the whole header is
// validated before any tensor byte is touched; a file that passes can be read without
// further bounds checks.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/dtype.h"
#include "io/mapped_file.h"

namespace fusediff::io {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  uint64_t begin, end;         // byte range relative to the start of the data section
  int64_t numel() const;
};

struct SafetensorsLimits {
  uint64_t max_header_bytes = uint64_t{100} << 20;  // about the reference implementation's 100 MB
  uint64_t max_tensors = uint64_t{1} << 16;         // diffusion checkpoints hold a few thousand
  uint64_t max_metadata_entries = uint64_t{1} << 14;
  int max_rank = 8;
};

// Immutable once opened: any number of threads may read tensors from one file at once.
class SafetensorsFile {
 public:
  // Maps the file read-only (or reads it whole where mapping is not possible) and validates
  // the header. Errors: Io when the file cannot be opened or read, Format for malformed
  // contents, Unsupported for an unknown dtype, Resource when a limit is exceeded.
  // Truncating a mapped file while it is open makes later reads fault (SIGBUS): the file
  // must not be rewritten in place while it is in use.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path, const SafetensorsLimits& limits = {});
  // The same validation over bytes in memory (tests, fuzzers); path() is "<memory>".
  static std::shared_ptr<SafetensorsFile> from_bytes(std::vector<uint8_t> bytes,
                                                     const SafetensorsLimits& limits = {});

  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // header order
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  const std::string& path() const { return file_->path(); }

  // Raw little-endian bytes of a tensor, end - begin of them; not aligned in general.
  // `info` must describe a range of this file (a TensorInfo from tensors() always does);
  // anything else throws Error(Argument).
  const uint8_t* data(const TensorInfo& info) const;
  // Converts F32, F64, F16 and BF16 to float32 (F16/BF16 exactly, F64 rounded to nearest);
  // `out` holds numel() floats. Other dtypes throw Error(Unsupported) naming tensor and dtype.
  void read_float32(const TensorInfo& info, float* out) const;
  std::vector<float> to_float32(const TensorInfo& info) const;

 private:
  explicit SafetensorsFile(std::shared_ptr<const MappedFile> file)
      : file_(std::move(file)), bytes_(file_->data()), size_(file_->size()) {}
  // Validates the bytes of file_ and fills tensors_, by_name_ and metadata_.
  void parse_header(const SafetensorsLimits& limits);

  std::shared_ptr<const MappedFile> file_;
  const uint8_t* bytes_;
  uint64_t size_;
  uint64_t data_start_ = 0;           // 8 + header length
  std::vector<TensorInfo> tensors_;
  std::vector<size_t> by_name_;       // indices into tensors_, sorted by name, for find()
  std::vector<std::pair<std::string, std::string>> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data;  // `bytes` little-endian bytes
  size_t bytes;
};

// Writes tensors in the given order, contiguous, after a header padded with spaces so that
// 8 + N is a multiple of 8. Bad arguments (duplicate or invalid names, bytes that do not
// match dtype x shape) throw Error(Argument); file system failures throw Error(Io) and
// remove the partial file.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::vector<std::pair<std::string, std::string>>& metadata);

}  // namespace fusediff::io
