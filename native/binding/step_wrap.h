// The sampler-step kernels (kernels/step.h) as JS functions: argument conversion and
// validation, one AsyncWorker per call, results as NativeTensors. No arithmetic here.
#pragma once
#include <napi.h>

namespace fusediff::binding {

// Adds to `exports`:
//   stepAffine(x, m, z, y, options): Promise<[NativeTensor, NativeTensor | null]>
//   stepLangevin(x, m, z, options): Promise<[NativeTensor, NativeTensor | null, Float64Array]>
//   randn(shape, seeds: Float64Array, stream): Promise<NativeTensor>
//   concatBatch(tensors[]): Promise<NativeTensor>
//   toImages(x, source: number[], scale, offset): Promise<Uint8Array>
// (see lib/native.ts for the option objects).
void register_step(Napi::Env env, Napi::Object exports);

}  // namespace fusediff::binding
