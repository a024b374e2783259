// NativeWeightReader: a model's weights as PyTorch stored them (float32, original shapes),
// for readers that need the tensors rather than a plan — the ONNX exporter. Same file
// formats and name lookup as loading (safetensors or restricted .bin, sharded, legacy names).
//   NativeWeightReader.open(paths: string[]): NativeWeightReader
//   reader.shape(name): number[] | null
//   reader.read(name): Float32Array          (E_FORMAT when absent)
//   reader.close()                           (later calls give E_DISPOSED)
// Reads are synchronous: each is one tensor, and the exporter that calls them builds its
// graph synchronously anyway.
#pragma once
#include <napi.h>

#include <memory>

#include "unet/weights.h"

namespace fusediff::binding {

class WeightReaderWrap : public Napi::ObjectWrap<WeightReaderWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit WeightReaderWrap(const Napi::CallbackInfo& info);

 private:
  static Napi::Value open(const Napi::CallbackInfo& info);
  Napi::Value shape(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value close(const Napi::CallbackInfo& info);

  unet::FileWeights& weights(Napi::Env env);
  std::unique_ptr<unet::FileWeights> weights_;
};

void register_weight_reader(Napi::Env env, Napi::Object exports);

}  // namespace fusediff::binding
