#include "binding/tensor_wrap.h"

#include <cstring>

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/errors.h"

namespace fusediff::binding {

Napi::Function TensorWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeTensor",
                     {InstanceMethod<&TensorWrap::shape>("shape"), InstanceMethod<&TensorWrap::read>("read"),
                      InstanceMethod<&TensorWrap::dispose>("dispose"),
                      InstanceMethod<&TensorWrap::disposed>("disposed")});
}

Napi::Object TensorWrap::wrap(Napi::Env env, TensorPtr tensor) {
  Napi::Object obj = addon_data(env).tensor_class.New({});
  Unwrap(obj)->adopt(env, std::move(tensor));
  return obj;
}

TensorPtr TensorWrap::unwrap(Napi::Env env, Napi::Value value, const char* what) {
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addon_data(env).tensor_class.Value()))
    throw make_error(env, "E_ARGUMENT", std::string(what) + " must be a fusediff Tensor");
  TensorWrap* self = Unwrap(value.As<Napi::Object>());
  if (!self->tensor_) throw make_error(env, "E_DISPOSED", std::string(what) + " has been disposed");
  return self->tensor_;
}

// new NativeTensor() makes an empty handle (filled by wrap); new NativeTensor(Float32Array, shape)
// copies the data into engine memory.
TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  Napi::Env env = info.Env();
  if (info.Length() == 0) return;
  guarded(env, [&] {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw make_error(env, "E_ARGUMENT", "tensor data must be a Float32Array");
    if (!info[1].IsArray()) throw make_error(env, "E_ARGUMENT", "tensor shape must be an array of integers");
    Napi::Float32Array data = info[0].As<Napi::Float32Array>();
    Napi::Array dims = info[1].As<Napi::Array>();
    if (dims.Length() > 8) throw make_error(env, "E_SHAPE", "tensor rank above 8 is not supported");
    std::vector<int64_t> shape;
    for (uint32_t i = 0; i < dims.Length(); ++i) {
      Napi::Value d = dims.Get(i);
      const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
      if (!(v >= 0 && v <= 9007199254740991.0 && v == static_cast<double>(static_cast<int64_t>(v))))
        throw make_error(env, "E_SHAPE", "tensor shape entries must be non-negative integers");
      shape.push_back(static_cast<int64_t>(v));
    }
    const int64_t numel = checked_numel(shape, "tensor");
    if (static_cast<int64_t>(data.ElementLength()) != numel)
      throw make_error(env, "E_SHAPE", "tensor data has " + std::to_string(data.ElementLength()) +
                                           " values but shape " + shape_to_string(shape) + " needs " +
                                           std::to_string(numel));
    auto tensor = std::make_shared<Tensor>(shape);
    if (numel) std::memcpy(tensor->data(), data.Data(), static_cast<size_t>(numel) * sizeof(float));
    adopt(env, std::move(tensor));
    return 0;
  });
}

TensorWrap::~TensorWrap() { drop(); }

void TensorWrap::adopt(Napi::Env env, TensorPtr tensor) {
  tensor_ = std::move(tensor);
  reported_bytes_ = tensor_->numel() * static_cast<int64_t>(sizeof(float));
  Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
}

void TensorWrap::drop() {
  if (reported_bytes_) Napi::MemoryManagement::AdjustExternalMemory(Env(), -reported_bytes_);
  reported_bytes_ = 0;
  tensor_.reset();
}

Napi::Value TensorWrap::shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TensorPtr t = unwrap(env, Value(), "tensor");
  Napi::Array out = Napi::Array::New(env, t->shape().size());
  for (size_t i = 0; i < t->shape().size(); ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>(t->shape()[i]));
  return out;
}

// Copies the data into a new Float32Array off the main thread (the array's memory is
// allocated here and stays alive through the reference held by the finish closure).
Napi::Value TensorWrap::read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  TensorPtr t = unwrap(env, Value(), "tensor");
  Napi::Float32Array out = Napi::Float32Array::New(env, static_cast<size_t>(t->numel()));
  float* dst = out.Data();
  auto keep = std::make_shared<Napi::Reference<Napi::Float32Array>>(Napi::Persistent(out));
  return Task::run(
      env, [t, dst] { std::memcpy(dst, t->data(), static_cast<size_t>(t->numel()) * sizeof(float)); },
      [keep](Napi::Env) { return keep->Value(); });
}

Napi::Value TensorWrap::dispose(const Napi::CallbackInfo& info) {
  drop();
  return info.Env().Undefined();
}

Napi::Value TensorWrap::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !tensor_); }

}  // namespace fusediff::binding
