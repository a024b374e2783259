// Shared by the CUDA sources: the context, error reporting, launch checks.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "fusediff_cuda.h"

struct fdc_context {
  int device = 0;
  cudaStream_t stream = nullptr;
  // Device staging for the small host arrays of a step (coefficients, seeds).
  void* staging = nullptr;
  int64_t staging_bytes = 0;
};

namespace fusediff::cuda {

// Records `message` as this thread's last error and returns `status`.
int set_error(int status, const std::string& message);
// Maps a CUDA error to a status (no driver / no device / out of memory / other) with a message
// naming `what` and CUDA's own description.
int from_cuda(cudaError_t error, const char* what);
// Device staging of at least `bytes` (grown on demand; waits for queued work before freeing).
int staging(fdc_context* ctx, int64_t bytes, void** out);

inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

// Grid-stride loops cover any count with a bounded grid.
constexpr int kThreads = 256;
inline unsigned grid_for(int64_t n) {
  const unsigned b = blocks_for(n, kThreads);
  return b > 65535u * 8u ? 65535u * 8u : b;
}

}  // namespace fusediff::cuda

#define FDC_CUDA(call, what)                                                          \
  do {                                                                                \
    const cudaError_t fdc_e_ = (call);                                                \
    if (fdc_e_ != cudaSuccess) return ::fusediff::cuda::from_cuda(fdc_e_, what);      \
  } while (0)
// After a kernel launch: a launch configuration error, reported with the kernel's name.
#define FDC_LAUNCHED(what) FDC_CUDA(cudaGetLastError(), what)
#define FDC_REQUIRE(cond, message)                                                    \
  do {                                                                                \
    if (!(cond)) return ::fusediff::cuda::set_error(FDC_ERR_ARGUMENT, message);       \
  } while (0)
