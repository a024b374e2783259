// NativeUNet: a JS handle on a loaded U-Net (its plan and executor).
#pragma once
#include <napi.h>

#include <memory>

#include "unet/runner.h"

namespace fusediff::binding {

class UNetWrap : public Napi::ObjectWrap<UNetWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit UNetWrap(const Napi::CallbackInfo& info);

 private:
  // load(config, weightFiles: string[], kernels?: string, { precision?: 'float32' | 'int8' |
  //      'bfloat16', floatLayers?: string[], quantizeFloatWeights?: boolean }?, device?: string,
  //      devicePrecision?: string): Promise<NativeUNet>
  //   device: 'cpu' (default) or 'cuda' / 'cuda:N' (the CUDA library is opened on demand);
  //   devicePrecision: the CUDA convolutions' math, 'tf32' (default), 'fp32' or 'bf16'.
  //   (.bin files are PyTorch checkpoints, read without executing them; others safetensors)
  static Napi::Value load(const Napi::CallbackInfo& info);
  // expectedWeights(config): { name, shape }[] — the tensors a config needs, no file read.
  static Napi::Value expected_weights(const Napi::CallbackInfo& info);
  // expectedPlan(config): the plan a config gives (see plan_describe.h), no file read: what a
  // checkpoint costs before its weights are downloaded.
  static Napi::Value expected_plan(const Napi::CallbackInfo& info);
  // forward(sample, { timesteps: Float64Array, classIds?: Float64Array, classValues?: Float64Array,
  //                   classVectors?: Float32Array, tileable?: boolean, profile?: boolean })
  //   : Promise<NativeTensor>, or with profile Promise<{ output: NativeTensor, opSeconds: Float64Array }>
  // layers(config): { name, shape, group }[] — the conv and linear layers, with the fused
  // group each runs in.
  static Napi::Value layers(const Napi::CallbackInfo& info);
  // quantize(config, weightFiles, destination, floatLayers?): Promise<{ layers: { name, int8,
  //   relativeError }[], tensors, bytes }> — writes a fusediff-int8 safetensors file (quantize.h).
  static Napi::Value quantize(const Napi::CallbackInfo& info);
  Napi::Value forward(const Napi::CallbackInfo& info);
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value arena_bytes(const Napi::CallbackInfo& info);
  // describe(): the plan as a plain object (see plan_describe.h).
  Napi::Value describe(const Napi::CallbackInfo& info);
  // releaseCachedMemory(): frees the idle activation arenas (they are kept per input shape,
  // one per concurrent forward, for reuse).
  Napi::Value release_cached_memory(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<unet::Runner> executor(Napi::Env env);

  std::shared_ptr<unet::Runner> executor_;
};

}  // namespace fusediff::binding
