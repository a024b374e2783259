// The fused sampler step (kernels/step.h: affine_step) on a CUDA device, for host tensors:
// uploads the inputs, runs the step kernel, downloads the results. The binding calls it for
// steps whose model output came from a model loaded on CUDA, so that forward and step run on
// the same device. One process-wide CUDA context per device serves every step (serialised).
#pragma once
#include <cstdint>

#include "backend/device_backend.h"
#include "kernels/step.h"

namespace fusediff::backend {

// Whether affine_step_on_device supports these parameters (dynamic thresholding does not).
// (langevin_step_on_device supports every LangevinParams.)
bool device_step_supported(const kernels::AffineStepParams& p);

// Same contract as kernels::affine_step; `m_floats` is the model output's element count.
void affine_step_on_device(int device, const kernels::AffineStepParams& p, const float* x,
                           const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z,
                           const float* y, float* out, float* x0_out);

// kernels::langevin_step on a device (same contract); `m_floats` as above.
void langevin_step_on_device(int device, const kernels::LangevinParams& p, const float* x,
                             const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z,
                             float* out, float* mean_out, double* step_sizes);
void langevin_step_with(DeviceBackend& backend, const kernels::LangevinParams& p, const float* x,
                        const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z, float* out,
                        float* mean_out, double* step_sizes);

// The same through any backend (the host emulation in tests); the caller serialises.
void affine_step_with(DeviceBackend& backend, const kernels::AffineStepParams& p, const float* x,
                      const kernels::ModelOutputView& m, int64_t m_floats, const kernels::NoiseSource& z, const float* y,
                      float* out, float* x0_out);

}  // namespace fusediff::backend
