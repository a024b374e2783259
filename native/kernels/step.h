// Fused sampler-step kernels: the tensor arithmetic of one scheduler/sampler step in one
// pass over memory. TypeScript computes the per-step coefficients (in float64, per batch
// item); these kernels only combine tensors with them.
//
// All tensors are NCHW float32 of `batch` images of `channels` x `pixels` values, except the
// model output m, described by a ModelOutputView (it may hold 2x the channels, learned
// variance, and/or 2x the batch, classifier-free guidance). Per-element arithmetic is done
// in float64 and rounded once on store, so a result does not depend on the thread count.
//
// Kernels:
//   affine_step     out = bx·x + bm·m + b0·x̂0 + σ_z·z + by·y   with x̂0 = clip(ax·x + am·m + az·z)
//                   (every DDPM/DDIM/CM/Euler/Euler-a/DPM-Solver/SDE-predictor/PF-ODE step,
//                   q-sampling, v targets, input scaling)
//   langevin_step   the annealed Langevin corrector of Song et al. 2021 (needs norms)
//   abs_quantile    the dynamic-thresholding quantile (Saharia et al. 2022) used by affine_step
//   philox_normal   per-image-seeded Gaussian noise (core/philox.h)
//   to_uint8_hwc    images: clamp(a·x + b, 0, 1)·255, rounded, interleaved
//   concat_batch    [x1; x2; ...] along the batch (the two halves of a guided forward)
// Each has a plain reference in namespace `reference` (kernels/reference/step.cpp), the
// oracle of the native tests.
#pragma once
#include <cstdint>
#include <vector>

#include "core/thread_pool.h"

namespace fusediff::kernels {

// Where the noise z of a step comes from: a tensor shaped like x, or Philox noise generated
// in place from one seed per image and a stream number (core/philox.h), or nothing (z = 0).
struct NoiseSource {
  const float* tensor = nullptr;
  const uint64_t* seeds = nullptr;  // one per batch item, when generated
  uint64_t stream = 0;
  bool present() const { return tensor != nullptr || seeds != nullptr; }
};

// How to read the model output m for image b, channel c, pixel p.
//   - m_channels == channels: m is the prediction.
//   - m_channels == 2·channels: learned variance; channels [0, C) are the prediction and
//     [C, 2C) the variance input v (diffusers' split of 2C-channel outputs).
//   - guided: m holds 2·batch images, [0, B) unconditional and [B, 2B) conditional; the
//     prediction is m_u + w·(m_c − m_u) (Ho & Salimans 2022) and v comes from the conditional half.
struct ModelOutputView {
  const float* data = nullptr;
  int64_t m_channels = 0;
  bool guided = false;
  double guidance_scale = 1.0;
};

enum class ClampMode { None, Range, Dynamic };

enum class NoiseScaleMode {
  Constant,  // σ_z = bz
  SqrtV,     // σ_z = bz·√v          (diffusers DDPM "learned": v is a variance)
  ExpV,      // σ_z = bz·exp(e0 + e1·v)   (DDPM "learned_range": log-variance interpolation)
};

struct AffineStepParams {
  int64_t batch = 1, channels = 0, pixels = 0;
  // Per-batch-item coefficient arrays (length batch). Null means 0.
  const double* ax = nullptr;
  const double* am = nullptr;
  const double* az = nullptr;
  const double* bx = nullptr;
  const double* bm = nullptr;
  const double* b0 = nullptr;
  const double* bz = nullptr;
  const double* by = nullptr;
  const double* e0 = nullptr;  // NoiseScaleMode::ExpV
  const double* e1 = nullptr;
  ClampMode clamp = ClampMode::None;
  double clamp_lo = -1.0, clamp_hi = 1.0;           // Range
  double threshold_ratio = 0.995, threshold_max = 1.0;  // Dynamic: s = clamp(quantile(|x̂0|, ratio), 1, max); x̂0 = clamp(x̂0, −s, s)/s
  NoiseScaleMode noise_scale = NoiseScaleMode::Constant;
};

// One fused step. `m` may be absent (data null) when am and bm are all 0; `y` (an extra
// tensor shaped like x, e.g. DPM-Solver's previous data prediction) may be null when by is
// all 0. `x0_out` (nullable) receives x̂0 after clamping. Throws Error(Argument) when a
// needed input is missing.
void affine_step(const AffineStepParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z,
                 const float* y, float* out, float* x0_out, ThreadPool& pool);

// Annealed Langevin corrector (Song et al. 2021, Algorithm 4/5):
//   score_b = k_b·m_b;   ε_b = 2·α_b·(snr·‖z_b‖ / ‖score_b‖)²
//   mean = x + ε_b·score_b;   out = mean + √(2ε_b)·z
// Norms are over an image (C·H·W values), accumulated in float64 in fixed blocks (the sum
// order does not depend on the thread count). With batch_mean_norms both norms are the mean
// over the batch of the per-image norms, as in Song et al.'s code and diffusers; otherwise
// every image has its own step size (an image's result then does not depend on its batch).
// A zero score norm gives ε = 0. `step_sizes` (nullable, length batch) receives ε_b.
struct LangevinParams {
  int64_t batch = 1, channels = 0, pixels = 0;
  const double* score_scale = nullptr;  // k_b
  const double* alpha = nullptr;        // α_b (null: 1)
  double snr = 0.16;
  bool batch_mean_norms = false;
};
void langevin_step(const LangevinParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z, float* out,
                   float* mean_out, double* step_sizes, ThreadPool& pool);

// The `q`-quantile (0 ≤ q ≤ 1) of |data[0..n)| with linear interpolation between order
// statistics (torch.quantile's default): position q·(n − 1). n ≥ 1.
double abs_quantile(const float* data, int64_t n, double q);

// out[b, i] = N(0, 1) value of element i of (seeds[b], stream): see core/philox.h.
void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream,
                   ThreadPool& pool);

// Images: NCHW float -> per image, interleaved [pixels][out_channels] bytes:
//   v = round_half_even(clamp(scale·x + offset, 0, 1)·255)   (float32 arithmetic, as numpy)
// Output channel k takes input channel source[k], or 255 where source[k] < 0 (alpha).
void to_uint8_hwc(const float* x, int64_t batch, int64_t channels, int64_t pixels, const std::vector<int>& source,
                  float scale, float offset, uint8_t* out, ThreadPool& pool);

// Copies `parts` (each parts_numel[i] floats) one after the other into out.
void concat_batch(const std::vector<const float*>& parts, const std::vector<int64_t>& parts_numel, float* out,
                  ThreadPool& pool);

namespace reference {
// Plain, single-threaded, obviously-correct versions (same contracts).
void affine_step(const AffineStepParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z,
                 const float* y, float* out, float* x0_out);
void langevin_step(const LangevinParams& p, const float* x, const ModelOutputView& m, const NoiseSource& z, float* out,
                   float* mean_out, double* step_sizes);
double abs_quantile(const float* data, int64_t n, double q);
void philox_normal(float* out, int64_t batch, int64_t per_item, const uint64_t* seeds, uint64_t stream);
}  // namespace reference

}  // namespace fusediff::kernels
