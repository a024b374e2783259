// A development hook for `npm run bench`: times one convolution of the active kernel table
// in isolation. Not part of the public API (lib/ does not expose it).
#pragma once
#include <napi.h>

namespace fusediff::binding {

void register_bench_hook(Napi::Env env, Napi::Object exports);

}  // namespace fusediff::binding
