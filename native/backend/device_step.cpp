#include "backend/device_step.h"

#include <map>
#include <memory>
#include <mutex>

#include "backend/cuda_backend.h"

namespace fusediff::backend {

namespace {
std::mutex g_mutex;

// One backend per device, created on first use and never destroyed: its CUDA context must
// outlive every step, and tearing it down at process exit would race the runtime's own exit.
DeviceBackend& step_backend(int device) {
  static auto* backends = new std::map<int, DeviceBackend*>();
  auto it = backends->find(device);
  if (it == backends->end()) it = backends->emplace(device, make_cuda_backend(device, FDC_MATH_FP32).release()).first;
  return *it->second;
}
}  // namespace

bool device_step_supported(const kernels::AffineStepParams& p) { return p.clamp != kernels::ClampMode::Dynamic; }

void affine_step_on_device(int device, const kernels::AffineStepParams& p, const float* x,
                           const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z,
                           const float* y, float* out, float* x0_out) {
  std::lock_guard<std::mutex> lock(g_mutex);
  affine_step_with(step_backend(device), p, x, m, m_floats, z, y, out, x0_out);
}

void affine_step_with(DeviceBackend& be, const kernels::AffineStepParams& p, const float* x,
                      const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z, const float* y,
                      float* out, float* x0_out) {
  const int64_t n = p.batch * p.channels * p.pixels;
  auto put = [&](const float* host, int64_t count) {
    DeviceBuffer b;
    if (!host) return b;
    b = DeviceBuffer(be, count * 4);
    be.upload(b.get(), host, count * 4);
    return b;
  };
  DeviceBuffer dx = put(x, n), dm = put(m.data, m_floats), dz = put(z.tensor, n), dy = put(y, n);
  DeviceBuffer dout(be, n * 4), dx0;
  if (x0_out) dx0 = DeviceBuffer(be, n * 4);
  fdc_affine_step_params q{};
  q.batch = p.batch, q.channels = p.channels, q.pixels = p.pixels;
  q.ax = p.ax, q.am = p.am, q.az = p.az, q.bx = p.bx, q.bm = p.bm, q.b0 = p.b0, q.bz = p.bz, q.by = p.by;
  q.e0 = p.e0, q.e1 = p.e1;
  q.clamp = p.clamp == kernels::ClampMode::Range ? FDC_CLAMP_RANGE : FDC_CLAMP_NONE;
  q.clamp_lo = p.clamp_lo, q.clamp_hi = p.clamp_hi;
  q.noise_scale = p.noise_scale == kernels::NoiseScaleMode::SqrtV  ? FDC_NOISE_SQRTV
                  : p.noise_scale == kernels::NoiseScaleMode::ExpV ? FDC_NOISE_EXPV
                                                                   : FDC_NOISE_CONSTANT;
  q.m = dm.f32(), q.m_channels = m.m_channels, q.guided = m.guided ? 1 : 0, q.guidance_scale = m.guidance_scale;
  q.z = dz.f32(), q.seeds = z.tensor ? nullptr : z.seeds, q.stream = z.stream;
  q.y = dy.f32();
  be.affine_step(q, dx.f32(), dout.f32(), dx0.f32());
  be.download(out, dout.get(), n * 4);
  if (x0_out) be.download(x0_out, dx0.get(), n * 4);
}

void langevin_step_on_device(int device, const kernels::LangevinParams& p, const float* x,
                             const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z,
                             float* out, float* mean_out, double* step_sizes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  langevin_step_with(step_backend(device), p, x, m, m_floats, z, out, mean_out, step_sizes);
}

void langevin_step_with(DeviceBackend& be, const kernels::LangevinParams& p, const float* x,
                        const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z, float* out,
                        float* mean_out, double* step_sizes) {
  const int64_t n = p.batch * p.channels * p.pixels;
  auto put = [&](const float* host, int64_t count) {
    DeviceBuffer b;
    if (!host) return b;
    b = DeviceBuffer(be, count * 4);
    be.upload(b.get(), host, count * 4);
    return b;
  };
  DeviceBuffer dx = put(x, n), dm = put(m.data, m_floats), dz = put(z.tensor, n);
  DeviceBuffer dout(be, n * 4), dmean;
  if (mean_out) dmean = DeviceBuffer(be, n * 4);
  fdc_langevin_params q{};
  q.batch = p.batch, q.channels = p.channels, q.pixels = p.pixels;
  q.score_scale = p.score_scale, q.alpha = p.alpha, q.snr = p.snr, q.batch_mean_norms = p.batch_mean_norms ? 1 : 0;
  q.m = dm.f32(), q.guided = m.guided ? 1 : 0, q.guidance_scale = m.guidance_scale;
  q.z = dz.f32(), q.seeds = z.tensor ? nullptr : z.seeds, q.stream = z.stream;
  be.langevin_step(q, dx.f32(), dout.f32(), dmean.f32(), step_sizes);
  be.download(out, dout.get(), n * 4);
  if (mean_out) be.download(mean_out, dmean.get(), n * 4);
}

}  // namespace fusediff::backend
