#include "core/aligned_buffer.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/error.h"

namespace fusediff {
namespace {
std::atomic<int64_t> g_live_bytes{0};
std::atomic<int64_t> g_live_buffers{0};
std::atomic<int64_t> g_peak_bytes{0};

void note_alloc(size_t bytes) {
  int64_t now = g_live_bytes.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  g_live_buffers.fetch_add(1);
  int64_t peak = g_peak_bytes.load();
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

MemoryStats memory_stats() { return {g_live_bytes.load(), g_live_buffers.load(), g_peak_bytes.load()}; }

AlignedBuffer::AlignedBuffer(size_t bytes) {
  if (bytes == 0) return;
  // aligned_alloc wants a size that is a multiple of the alignment.
  size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  if (rounded < bytes) fail(ErrorCode::Resource, "allocation of " + std::to_string(bytes) + " bytes overflows");
  data_ = std::aligned_alloc(kAlignment, rounded);
  if (!data_) fail(ErrorCode::Resource, "out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(data_, 0, rounded);
  bytes_ = bytes;
  note_alloc(bytes_);
}

AlignedBuffer::~AlignedBuffer() { release(); }

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept : data_(other.data_), bytes_(other.bytes_) {
  other.data_ = nullptr;
  other.bytes_ = 0;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = other.data_;
    bytes_ = other.bytes_;
    other.data_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void AlignedBuffer::release() {
  if (!data_) return;
  std::free(data_);
  g_live_bytes.fetch_sub(static_cast<int64_t>(bytes_));
  g_live_buffers.fetch_sub(1);
  data_ = nullptr;
  bytes_ = 0;
}

}  // namespace fusediff
