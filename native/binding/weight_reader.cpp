#include "binding/weight_reader.h"

#include <cstring>
#include <string>
#include <vector>

#include "binding/addon_data.h"
#include "binding/errors.h"

namespace fusediff::binding {

Napi::Function WeightReaderWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeWeightReader",
                     {StaticMethod<&WeightReaderWrap::open>("open"), InstanceMethod<&WeightReaderWrap::shape>("shape"),
                      InstanceMethod<&WeightReaderWrap::read>("read"), InstanceMethod<&WeightReaderWrap::close>("close")});
}

WeightReaderWrap::WeightReaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<WeightReaderWrap>(info) {}

unet::FileWeights& WeightReaderWrap::weights(Napi::Env env) {
  if (!weights_) throw make_error(env, "E_DISPOSED", "this weight reader has been closed");
  return *weights_;
}

Napi::Value WeightReaderWrap::open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsArray()) throw make_error(env, "E_ARGUMENT", "NativeWeightReader.open expects an array of weight file paths");
    std::vector<std::shared_ptr<unet::WeightFile>> files;
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsString()) throw make_error(env, "E_ARGUMENT", "NativeWeightReader.open: every path must be a string");
      files.push_back(unet::open_weight_file(a.Get(i).As<Napi::String>().Utf8Value()));
    }
    Napi::Object reader = addon_data(env).weight_reader_class.New({});
    WeightReaderWrap::Unwrap(reader)->weights_ = std::make_unique<unet::FileWeights>(std::move(files));
    return reader;
  });
}

Napi::Value WeightReaderWrap::shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw make_error(env, "E_ARGUMENT", "shape expects a weight name");
    const unet::FileWeights::Location at = weights(env).find(info[0].As<Napi::String>().Utf8Value());
    if (!at.file) return env.Null();
    const std::vector<int64_t>& dims = *at.file->shape(at.stored_name);
    Napi::Array out = Napi::Array::New(env, dims.size());
    for (size_t i = 0; i < dims.size(); ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>(dims[i]));
    return out;
  });
}

Napi::Value WeightReaderWrap::read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsString()) throw make_error(env, "E_ARGUMENT", "read expects a weight name");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const unet::FileWeights::Location at = weights(env).find(name);
    if (!at.file) throw make_error(env, "E_FORMAT", "weight '" + name + "' is not in the model's weight files");
    // get() rather than the raw file: an int8 (fusediff-int8) weight comes back dequantized.
    const std::vector<float> values = weights(env).get(name, *at.file->shape(at.stored_name));
    Napi::Float32Array out = Napi::Float32Array::New(env, values.size());
    if (!values.empty()) std::memcpy(out.Data(), values.data(), values.size() * sizeof(float));
    return out;
  });
}

Napi::Value WeightReaderWrap::close(const Napi::CallbackInfo& info) {
  weights_.reset();
  return info.Env().Undefined();
}

void register_weight_reader(Napi::Env env, Napi::Object exports) {
  Napi::Function reader = WeightReaderWrap::define(env);
  addon_data(env).weight_reader_class = Napi::Persistent(reader);
  exports.Set("NativeWeightReader", reader);
}

}  // namespace fusediff::binding
