// Reader of PyTorch checkpoints (`diffusion_pytorch_model.bin`: torch.save of a state dict,
// in the zip format PyTorch writes since 1.6) that executes nothing. ZipArchive validates the
// container, unpickle_state_dict runs data.pkl on the restricted machine, and every tensor
// is then a strided view of a storage record, checked against that record's size before any
// tensor byte is read.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/dtype.h"
#include "io/mapped_file.h"
#include "io/pickle.h"
#include "io/zip.h"

namespace fusediff::io {

struct TorchTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;  // in elements
  int64_t offset;               // first element in the storage
  const ZipEntry* storage;      // the record holding the storage's bytes
  int64_t numel() const;
  bool contiguous() const;      // row-major without gaps: the bytes can be used as they are
};

struct TorchBinLimits {
  ZipLimits zip;
  PickleLimits pickle;
  uint64_t max_pickle_bytes = uint64_t{16} << 20;  // data.pkl of a large UNet is a few hundred KB
  // Check every record against its CRC-32 when opening (fuzzers turn this off so that
  // mutated pickles reach the unpickler).
  bool verify_checksums = true;
};

// Immutable once opened: any number of threads may read tensors at once.
class TorchBinFile {
 public:
  // Errors: Io (file system), Format (malformed archive, pickle or storage records), Unsafe
  // (a pickle that asks for anything but a state dict of tensors), Unsupported (compressed
  // archives, PyTorch's legacy pre-1.6 format, big-endian data), Resource (limits).
  static std::shared_ptr<TorchBinFile> open(const std::string& path, const TorchBinLimits& limits = {});
  static std::shared_ptr<TorchBinFile> from_bytes(std::vector<uint8_t> bytes, const TorchBinLimits& limits = {});

  TorchBinFile(const TorchBinFile&) = delete;  // tensors point into zip_'s entries
  TorchBinFile& operator=(const TorchBinFile&) = delete;

  const std::vector<TorchTensor>& tensors() const { return tensors_; }  // the state dict's order
  const TorchTensor* find(const std::string& name) const;             // nullptr if absent
  const std::string& path() const { return zip_.path(); }

  // Float tensors (F32, F64, F16, BF16) as float32 in row-major order; `out` holds numel()
  // floats. Other dtypes throw Error(Unsupported) naming the tensor.
  void read_float32(const TorchTensor& tensor, float* out) const;
  std::vector<float> to_float32(const TorchTensor& tensor) const;
  // The tensor's elements in row-major order, unconverted: a view into the file when the
  // tensor is contiguous, else gathered into `scratch`. numel() x dtype_size bytes.
  const uint8_t* row_major_bytes(const TorchTensor& tensor, std::vector<uint8_t>& scratch) const;

 private:
  TorchBinFile(std::shared_ptr<const MappedFile> file, const TorchBinLimits& limits);
  // Calls visit(element pointer, count) for each run of elements in row-major order.
  template <typename Visit>
  void for_each_run(const TorchTensor& tensor, Visit&& visit) const;
  const TorchTensor& own(const TorchTensor& tensor) const;  // Argument unless it is one of tensors_

  ZipArchive zip_;
  std::vector<TorchTensor> tensors_;
  std::vector<size_t> by_name_;  // indices into tensors_, sorted by name
};

}  // namespace fusediff::io
