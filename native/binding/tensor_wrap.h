// NativeTensor: a JS handle on an engine Tensor. Its memory is freed by dispose() or,
// as a fallback, when the handle is garbage-collected; V8 is told about the native bytes
// so that GC pressure reflects them.
#pragma once
#include <napi.h>

#include "core/tensor.h"

namespace fusediff::binding {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // A new JS handle owning `tensor`.
  static Napi::Object wrap(Napi::Env env, TensorPtr tensor);
  // The tensor behind a JS handle; E_ARGUMENT if it is not one, E_DISPOSED if released.
  static TensorPtr unwrap(Napi::Env env, Napi::Value value, const char* what);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

 private:
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  void adopt(Napi::Env env, TensorPtr tensor);
  void drop();

  TensorPtr tensor_;
  int64_t reported_bytes_ = 0;
};

}  // namespace fusediff::binding
