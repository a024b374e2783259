// A whole file's bytes, read-only and immutable: memory-mapped where the platform allows,
// read into memory otherwise. Readers of weight files (safetensors, the zip inside a PyTorch
// .bin) validate these bytes and then view tensors in place.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fusediff::io {

class MappedFile {
 public:
  // Errors: Io when the file cannot be opened or read or is not a regular file, Resource when
  // it does not fit in memory. Truncating a mapped file while it is open makes later reads
  // fault (SIGBUS): weight files must not be rewritten in place while in use.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  // Bytes already in memory (tests, fuzzers); path() is `name`.
  static std::shared_ptr<const MappedFile> from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return bytes_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  explicit MappedFile(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::vector<uint8_t> owned_;       // the bytes, when they were read rather than mapped
  const uint8_t* mapped_ = nullptr;  // the mapping, when mapped
  const uint8_t* bytes_ = nullptr;   // whichever of the two holds the file
  uint64_t size_ = 0;
};

[[noreturn]] void fail_io(const std::string& what, const std::string& path, int err);

}  // namespace fusediff::io
