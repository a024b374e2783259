// Checkpoint conversion for JS: convertTorchBin(sources: string[], destination: string)
//   -> Promise<{ tensors: number, bytes: number }>, run off the main thread.
#pragma once
#include <napi.h>

namespace fusediff::binding {

void register_checkpoint(Napi::Env env, Napi::Object exports);

}  // namespace fusediff::binding
