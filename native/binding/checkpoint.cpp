#include "binding/checkpoint.h"

#include <memory>
#include <string>
#include <vector>

#include "binding/async.h"
#include "binding/errors.h"
#include "io/torch_to_safetensors.h"

namespace fusediff::binding {
namespace {

Napi::Value convert_torch_bin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsArray() || !info[1].IsString())
      throw make_error(env, "E_ARGUMENT", "convertTorchBin expects (sources: string[], destination: string)");
    std::vector<std::string> sources;
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsString()) throw make_error(env, "E_ARGUMENT", "convertTorchBin: every source must be a path");
      sources.push_back(a.Get(i).As<Napi::String>().Utf8Value());
    }
    const std::string destination = info[1].As<Napi::String>().Utf8Value();
    auto result = std::make_shared<io::ConversionResult>();
    return Task::run(
        env, [sources, destination, result] { *result = io::torch_bin_to_safetensors(sources, destination); },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("tensors", static_cast<double>(result->tensors));
          out.Set("bytes", static_cast<double>(result->bytes));
          return out;
        });
  });
}

}  // namespace

void register_checkpoint(Napi::Env env, Napi::Object exports) {
  exports.Set("convertTorchBin", Napi::Function::New(env, convert_torch_bin));
}

}  // namespace fusediff::binding
