// Per-environment state of the addon (one per Node main thread or worker_thread).
#pragma once
#include <napi.h>

namespace fusediff::binding {

struct AddonData {
  Napi::FunctionReference error_class;
  Napi::FunctionReference tensor_class;
  Napi::FunctionReference unet_class;
  Napi::FunctionReference weight_reader_class;
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace fusediff::binding
