// A device backend: memory, copies, and one call per op of a plan, queued in order on the
// device (the small interface of ggml's backends). unet/device_executor.h runs a Plan through
// it; the plan itself knows nothing of devices.
//
// The op arguments are the plain structs of the CUDA library's C ABI (cuda/include/
// fusediff_cuda.h), so that CudaBackend forwards them untouched; their meaning is that of the
// CPU kernels (kernels/kernels.h, kernels/elementwise.h, kernels/step.h). Pointers are device
// memory from allocate() unless a comment says host.
//
// Implementations: CudaBackend (cuda_backend.h), HostBackend (host_backend.h: host memory and
// the reference kernels, the device executor's test double).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "fusediff_cuda.h"

namespace fusediff::backend {

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  // E.g. "cuda:0 NVIDIA H200 (tf32)".
  virtual std::string name() const = 0;
  // The CUDA device index, or -1 for a backend that is not a CUDA device.
  virtual int cuda_device() const { return -1; }

  virtual void* allocate(int64_t bytes) = 0;  // zero bytes: nullptr
  virtual void release(void* p) noexcept = 0;
  virtual void upload(void* dst, const void* host_src, int64_t bytes) = 0;
  virtual void download(void* host_dst, const void* src, int64_t bytes) = 0;  // waits for queued work
  virtual void synchronize() = 0;

  // Convolution weights: PyTorch [out_c][in_c][k][k] (host) into the backend's layout.
  virtual int64_t packed_conv_bytes(int out_c, int in_c, int kernel) const = 0;
  virtual void pack_conv(const float* oihw_host, int out_c, int in_c, int kernel, void* packed) = 0;
  virtual void conv2d(const fdc_conv2d_params& p, const float* x, const void* packed, const fdc_epilogue& e,
                      float* y) = 0;
  virtual void group_norm(const fdc_group_norm_params& p, const float* x, float* y) = 0;
  virtual int64_t attention_scratch_bytes(const fdc_attention_params& p) const = 0;
  virtual void attention(const fdc_attention_params& p, const float* qkv, float* out, void* scratch) = 0;

  virtual void nchw_to_nhwc(const float* x, int batch, int channels, int height, int width, bool center, float* y) = 0;
  virtual void nhwc_to_nchw(const float* x, int batch, int height, int width, int channels, const float* divisor,
                            float* y) = 0;
  virtual void silu(const float* x, int64_t count, float* y) = 0;
  virtual void add(const float* x, int64_t count, float* y) = 0;  // y += x
  virtual void upsample_nearest2x(const float* x, int batch, int height, int width, int channels, float* y) = 0;
  virtual void avg_pool2x2(const float* x, int batch, int height, int width, int channels, float* y) = 0;
  virtual void concat_channels(const float* a, int ca, const float* b, int cb, int64_t pixels, float* y) = 0;

  // Coefficients and seeds in p are host arrays (see fusediff_cuda.h).
  virtual void affine_step(const fdc_affine_step_params& p, const float* x, float* out, float* x0_out) = 0;
  // Arrays in p are host arrays; step_sizes (nullable) is a host array of p.batch.
  virtual void langevin_step(const fdc_langevin_params& p, const float* x, float* out, float* mean_out,
                             double* step_sizes) = 0;
  virtual void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds_host,
                             uint64_t stream) = 0;
};

// Device memory owned by one backend; released on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(DeviceBackend& backend, int64_t bytes) : backend_(&backend), data_(backend.allocate(bytes)), bytes_(bytes) {}
  DeviceBuffer(DeviceBuffer&& o) noexcept : backend_(o.backend_), data_(o.data_), bytes_(o.bytes_) {
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      backend_ = o.backend_, data_ = o.data_, bytes_ = o.bytes_;
      o.data_ = nullptr;
      o.bytes_ = 0;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }
  void reset() {
    if (data_ && backend_) backend_->release(data_);
    data_ = nullptr;
    bytes_ = 0;
  }
  void* get() const { return data_; }
  float* f32() const { return static_cast<float*>(data_); }
  int64_t bytes() const { return bytes_; }

 private:
  DeviceBackend* backend_ = nullptr;
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace fusediff::backend
