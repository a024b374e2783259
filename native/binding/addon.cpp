// Entry point of the addon: registers the classes and functions, nothing else.
#include <napi.h>

#include "binding/addon_data.h"
#include "binding/bench_hook.h"
#include "binding/checkpoint.h"
#include "binding/errors.h"
#include "binding/runtime.h"
#include "binding/step_wrap.h"
#include "binding/tensor_wrap.h"
#include "binding/unet_wrap.h"
#include "binding/weight_reader.h"

namespace fusediff::binding {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function tensor = TensorWrap::define(env);
  Napi::Function unet = UNetWrap::define(env);
  data->tensor_class = Napi::Persistent(tensor);
  data->unet_class = Napi::Persistent(unet);
  exports.Set("NativeTensor", tensor);
  exports.Set("NativeUNet", unet);
  exports.Set("setErrorClass", Napi::Function::New(env, [](const Napi::CallbackInfo& info) { set_error_class(info); }));
  register_runtime(env, exports);
  register_checkpoint(env, exports);
  register_weight_reader(env, exports);
  register_step(env, exports);
  register_bench_hook(env, exports);  // dev-only: npm run bench
  return exports;
}

}  // namespace fusediff::binding

static Napi::Object InitFusediff(Napi::Env env, Napi::Object exports) { return fusediff::binding::init(env, exports); }

NODE_API_MODULE(fusediff, InitFusediff)
