// A 64-byte aligned, zero-initialised float-friendly byte buffer. All engine memory goes
// through it so that the live byte count (memory_stats) is exact and leaks are visible
// from JS diagnostics.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fusediff {

struct MemoryStats {
  int64_t live_bytes;      // bytes currently allocated by engine buffers
  int64_t live_buffers;    // number of live buffers
  int64_t peak_bytes;      // high-water mark of live_bytes since process start
};

MemoryStats memory_stats();

class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);  // throws Error(Resource) when the allocation fails
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  float* f32() { return static_cast<float*>(data_); }
  const float* f32() const { return static_cast<const float*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace fusediff
