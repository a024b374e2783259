#include "backend/host_backend.h"

#include <cstdlib>
#include <cstring>

#include "conv_layout.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "kernels/reference/reference.h"
#include "kernels/step.h"

namespace fusediff::backend {
namespace {

class HostBackend final : public DeviceBackend {
 public:
  std::string name() const override { return "host (device emulation)"; }

  void* allocate(int64_t bytes) override {
    if (bytes <= 0) return nullptr;
    void* p = std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64));
    if (!p) fail(ErrorCode::Resource, "host backend: out of memory");
    std::memset(p, 0xff, static_cast<size_t>(bytes));  // NaN bytes: reading unwritten memory shows
    return p;
  }
  void release(void* p) noexcept override { std::free(p); }
  void upload(void* dst, const void* src, int64_t bytes) override { std::memcpy(dst, src, static_cast<size_t>(bytes)); }
  void download(void* dst, const void* src, int64_t bytes) override { std::memcpy(dst, src, static_cast<size_t>(bytes)); }
  void synchronize() override {}

  int64_t packed_conv_bytes(int out_c, int in_c, int kernel) const override {
    return static_cast<int64_t>(out_c) * in_c * kernel * kernel * 4;
  }
  void pack_conv(const float* oihw, int out_c, int in_c, int kernel, void* packed) override {
    cuda::pack_conv_kco(oihw, out_c, in_c, kernel, static_cast<float*>(packed));
  }
  void conv2d(const fdc_conv2d_params& p, const float* x, const void* w, const fdc_epilogue& e, float* y) override {
    cuda::conv2d_gemm_host(p, x, static_cast<const float*>(w), e, y);
  }
  void group_norm(const fdc_group_norm_params& p, const float* x, float* y) override {
    kernels::GroupNormParams g;
    g.batch = p.batch;
    g.pixels = p.pixels;
    g.channels = p.channels;
    g.groups = p.groups;
    g.eps = p.eps;
    g.gamma = p.gamma;
    g.beta = p.beta;
    g.scale_shift = p.scale_shift;
    g.scale_shift_stride = p.scale_shift_stride;
    g.silu = p.silu != 0;
    kernels::reference::group_norm(g, x, y, nullptr, *pool());
  }
  int64_t attention_scratch_bytes(const fdc_attention_params&) const override { return 0; }
  void attention(const fdc_attention_params& p, const float* qkv, float* out, void*) override {
    kernels::AttentionParams a;
    a.batch = p.batch;
    a.tokens = p.tokens;
    a.channels = p.channels;
    a.heads = p.heads;
    kernels::reference::attention(a, qkv, out, nullptr, *pool());
  }
  void nchw_to_nhwc(const float* x, int batch, int channels, int height, int width, bool center, float* y) override {
    kernels::nchw_to_nhwc(x, batch, channels, height, width, center, y, *pool());
  }
  void nhwc_to_nchw(const float* x, int batch, int height, int width, int channels, const float* divisor,
                    float* y) override {
    kernels::nhwc_to_nchw(x, batch, height, width, channels, divisor, y, *pool());
  }
  void silu(const float* x, int64_t count, float* y) override { kernels::silu(x, count, y); }
  void add(const float* x, int64_t count, float* y) override {
    for (int64_t i = 0; i < count; ++i) y[i] += x[i];
  }
  void upsample_nearest2x(const float* x, int batch, int height, int width, int channels, float* y) override {
    kernels::upsample_nearest2x(x, batch, height, width, channels, y, *pool());
  }
  void avg_pool2x2(const float* x, int batch, int height, int width, int channels, float* y) override {
    kernels::avg_pool2x2(x, batch, height, width, channels, y, *pool());
  }
  void concat_channels(const float* a, int ca, const float* b, int cb, int64_t pixels, float* y) override {
    kernels::concat_channels(a, ca, b, cb, pixels, y, *pool());
  }
  void affine_step(const fdc_affine_step_params& p, const float* x, float* out, float* x0_out) override {
    kernels::AffineStepParams a;
    a.batch = p.batch, a.channels = p.channels, a.pixels = p.pixels;
    a.ax = p.ax, a.am = p.am, a.az = p.az, a.bx = p.bx, a.bm = p.bm, a.b0 = p.b0, a.bz = p.bz, a.by = p.by;
    a.e0 = p.e0, a.e1 = p.e1;
    if (p.clamp != FDC_CLAMP_NONE && p.clamp != FDC_CLAMP_RANGE)
      fail(ErrorCode::Unsupported, "dynamic thresholding runs on the CPU only");
    a.clamp = p.clamp == FDC_CLAMP_RANGE ? kernels::ClampMode::Range : kernels::ClampMode::None;
    a.clamp_lo = p.clamp_lo, a.clamp_hi = p.clamp_hi;
    a.noise_scale = p.noise_scale == FDC_NOISE_SQRTV  ? kernels::NoiseScaleMode::SqrtV
                    : p.noise_scale == FDC_NOISE_EXPV ? kernels::NoiseScaleMode::ExpV
                                                      : kernels::NoiseScaleMode::Constant;
    kernels::ModelOutputView m;
    m.data = p.m;
    m.m_channels = p.m_channels;
    m.guided = p.guided != 0;
    m.guidance_scale = p.guidance_scale;
    kernels::NoiseSource z;
    z.tensor = p.z;
    z.seeds = p.z ? nullptr : p.seeds;
    z.stream = p.stream;
    kernels::reference::affine_step(a, x, m, z, p.y, out, x0_out);
  }
  void langevin_step(const fdc_langevin_params& p, const float* x, float* out, float* mean_out,
                     double* step_sizes) override {
    kernels::LangevinParams l;
    l.batch = p.batch, l.channels = p.channels, l.pixels = p.pixels;
    l.score_scale = p.score_scale, l.alpha = p.alpha, l.snr = p.snr, l.batch_mean_norms = p.batch_mean_norms != 0;
    kernels::ModelOutputView m{p.m, p.channels, p.guided != 0, p.guidance_scale};
    kernels::NoiseSource z;
    z.tensor = p.z;
    z.seeds = p.z ? nullptr : p.seeds;
    z.stream = p.stream;
    kernels::reference::langevin_step(l, x, m, z, out, mean_out, step_sizes);
  }
  void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream) override {
    kernels::reference::philox_normal(out, batch, per_item, seeds, stream);
  }

 private:
  // The pool of the moment (the temporary keeps it alive for the call).
  static std::shared_ptr<ThreadPool> pool() { return ThreadPool::global(); }
};

}  // namespace

std::unique_ptr<DeviceBackend> make_host_backend() { return std::make_unique<HostBackend>(); }

}  // namespace fusediff::backend
