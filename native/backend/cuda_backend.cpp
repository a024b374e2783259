#include "backend/cuda_backend.h"

#include "core/error.h"

namespace fusediff::backend {

int parse_cuda_math(const std::string& name) {
  if (name == "fp32" || name == "float32") return FDC_MATH_FP32;
  if (name == "tf32" || name.empty()) return FDC_MATH_TF32;
  if (name == "bf16" || name == "bfloat16") return FDC_MATH_BF16;
  fail(ErrorCode::Argument, "unknown CUDA precision '" + name + "' (use fp32, tf32 or bf16)");
}

const char* cuda_math_name(int math) {
  switch (math) {
    case FDC_MATH_FP32: return "fp32";
    case FDC_MATH_TF32: return "tf32";
    case FDC_MATH_BF16: return "bf16";
  }
  return "?";
}

namespace {

class CudaBackend final : public DeviceBackend {
 public:
  CudaBackend(std::shared_ptr<CudaLibrary> lib, int device, int math) : lib_(std::move(lib)), device_(device), math_(math) {
    const auto devices = lib_->devices();  // no driver / no device: BackendUnavailable
    if (device < 0 || device >= static_cast<int>(devices.size()))
      fail(ErrorCode::BackendUnavailable, "CUDA device " + std::to_string(device) + " does not exist (" +
                                              std::to_string(devices.size()) + " device(s) found)");
    name_ = "cuda:" + std::to_string(device) + " " + devices[device].name + " (" + cuda_math_name(math) + ")";
    lib_->check(api().fdc_context_create(device, &ctx_), "CUDA context on device " + std::to_string(device));
  }
  ~CudaBackend() override { api().fdc_context_destroy(ctx_); }

  std::string name() const override { return name_; }
  int cuda_device() const override { return device_; }

  void* allocate(int64_t bytes) override {
    void* p = nullptr;
    lib_->check(api().fdc_malloc(ctx_, bytes, &p), "allocating " + std::to_string(bytes >> 20) + " MiB on the device");
    return p;
  }
  void release(void* p) noexcept override { api().fdc_free(ctx_, p); }
  void upload(void* dst, const void* src, int64_t bytes) override {
    lib_->check(api().fdc_upload(ctx_, dst, src, bytes), "upload");
  }
  void download(void* dst, const void* src, int64_t bytes) override {
    lib_->check(api().fdc_download(ctx_, dst, src, bytes), "download");
  }
  void synchronize() override { lib_->check(api().fdc_synchronize(ctx_), "synchronize"); }

  int64_t packed_conv_bytes(int out_c, int in_c, int kernel) const override {
    return api().fdc_packed_conv_bytes(out_c, in_c, kernel, math_);
  }
  void pack_conv(const float* oihw, int out_c, int in_c, int kernel, void* packed) override {
    lib_->check(api().fdc_pack_conv(ctx_, oihw, out_c, in_c, kernel, math_, packed), "pack_conv");
  }
  void conv2d(const fdc_conv2d_params& p, const float* x, const void* w, const fdc_epilogue& e, float* y) override {
    lib_->check(api().fdc_conv2d(ctx_, &p, x, w, math_, &e, y), "conv2d");
  }
  void group_norm(const fdc_group_norm_params& p, const float* x, float* y) override {
    lib_->check(api().fdc_group_norm(ctx_, &p, x, y), "group_norm");
  }
  int64_t attention_scratch_bytes(const fdc_attention_params& p) const override {
    return api().fdc_attention_scratch_bytes(&p);
  }
  void attention(const fdc_attention_params& p, const float* qkv, float* out, void* scratch) override {
    lib_->check(api().fdc_attention(ctx_, &p, qkv, out, scratch), "attention");
  }
  void nchw_to_nhwc(const float* x, int batch, int channels, int height, int width, bool center, float* y) override {
    lib_->check(api().fdc_nchw_to_nhwc(ctx_, x, batch, channels, height, width, center ? 1 : 0, y), "nchw_to_nhwc");
  }
  void nhwc_to_nchw(const float* x, int batch, int height, int width, int channels, const float* divisor,
                    float* y) override {
    lib_->check(api().fdc_nhwc_to_nchw(ctx_, x, batch, height, width, channels, divisor, y), "nhwc_to_nchw");
  }
  void silu(const float* x, int64_t count, float* y) override { lib_->check(api().fdc_silu(ctx_, x, count, y), "silu"); }
  void add(const float* x, int64_t count, float* y) override { lib_->check(api().fdc_add(ctx_, x, count, y), "add"); }
  void upsample_nearest2x(const float* x, int batch, int height, int width, int channels, float* y) override {
    lib_->check(api().fdc_upsample_nearest2x(ctx_, x, batch, height, width, channels, y), "upsample_nearest2x");
  }
  void avg_pool2x2(const float* x, int batch, int height, int width, int channels, float* y) override {
    lib_->check(api().fdc_avg_pool2x2(ctx_, x, batch, height, width, channels, y), "avg_pool2x2");
  }
  void concat_channels(const float* a, int ca, const float* b, int cb, int64_t pixels, float* y) override {
    lib_->check(api().fdc_concat_channels(ctx_, a, ca, b, cb, pixels, y), "concat_channels");
  }
  void affine_step(const fdc_affine_step_params& p, const float* x, float* out, float* x0_out) override {
    lib_->check(api().fdc_affine_step(ctx_, &p, x, out, x0_out), "affine_step");
  }
  void langevin_step(const fdc_langevin_params& p, const float* x, float* out, float* mean_out,
                     double* step_sizes) override {
    lib_->check(api().fdc_langevin_step(ctx_, &p, x, out, mean_out, step_sizes), "langevin_step");
  }
  void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream) override {
    lib_->check(api().fdc_philox_normal(ctx_, out, batch, per_item, seeds, stream), "philox_normal");
  }

 private:
  const CudaLibrary::Api& api() const { return lib_->api(); }
  std::shared_ptr<CudaLibrary> lib_;
  int device_;
  int math_;
  std::string name_;
  fdc_context* ctx_ = nullptr;
};

}  // namespace

std::unique_ptr<DeviceBackend> make_cuda_backend(int device, int math) {
  return std::make_unique<CudaBackend>(CudaLibrary::shared(), device, math);
}

}  // namespace fusediff::backend
