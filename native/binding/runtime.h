// Process-level functions: memory counters, limits, CPU and thread information.
#pragma once
#include <napi.h>

namespace fusediff::binding {

void register_runtime(Napi::Env env, Napi::Object exports);

}  // namespace fusediff::binding
