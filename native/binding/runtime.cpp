#include "binding/runtime.h"

#include "binding/errors.h"
#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "backend/cuda_library.h"
#include "binding/async.h"
#include "unet/executor.h"

namespace fusediff::binding {
namespace {

Napi::Value memory_stats(const Napi::CallbackInfo& info) {
  const MemoryStats s = fusediff::memory_stats();
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("liveBytes", static_cast<double>(s.live_bytes));
  out.Set("liveBuffers", static_cast<double>(s.live_buffers));
  out.Set("peakBytes", static_cast<double>(s.peak_bytes));
  return out;
}

Napi::Value runtime_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const CpuFeatures& f = cpu_features();
    Napi::Object out = Napi::Object::New(env);
    out.Set("kernels", kernels::select_kernels().name);
    out.Set("threads", ThreadPool::global()->num_threads());
    Napi::Object feats = Napi::Object::New(env);
    feats.Set("avx2", f.avx2);
    feats.Set("avx512", f.avx512);
    feats.Set("avx512Vnni", f.avx512_vnni);
    feats.Set("avx512Bf16", f.avx512_bf16);
    out.Set("cpuFeatures", feats);
    out.Set("activationMemoryLimit", static_cast<double>(unet::activation_memory_limit()));
    return out;
  });
}

Napi::Value set_memory_limit(const Napi::CallbackInfo& info) {
  const double bytes = info[0].ToNumber().DoubleValue();
  unet::set_activation_memory_limit(bytes > 0 ? static_cast<int64_t>(bytes) : 0);
  return info.Env().Undefined();
}

Napi::Value set_num_threads(const Napi::CallbackInfo& info) {
  const double n = info[0].ToNumber().DoubleValue();
  if (!(n >= 0 && n <= 1024 && n == static_cast<int>(n)))
    throw make_error(info.Env(), "E_ARGUMENT", "the thread count must be an integer in [0, 1024] (0: the default)");
  ThreadPool::set_global_threads(static_cast<int>(n));
  return info.Env().Undefined();
}

}  // namespace

// cudaInfo(): Promise<{ available, library, build, reason, devices: [{ index, name,
// computeCapability, multiprocessors, totalMemory }] }>: opens the CUDA library and asks the
// driver, off the main thread (the first CUDA call can take a while).
Napi::Value cuda_info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto probe = std::make_shared<backend::CudaProbe>();
  return Task::run(
      env, [probe] { *probe = backend::probe_cuda(); },
      [probe](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("available", probe->available);
        out.Set("library", probe->library);
        out.Set("build", probe->build);
        out.Set("reason", probe->reason);
        Napi::Array devices = Napi::Array::New(env, probe->devices.size());
        for (size_t i = 0; i < probe->devices.size(); ++i) {
          const fdc_device_props& d = probe->devices[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("index", static_cast<double>(i));
          o.Set("name", std::string(d.name));
          o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
          o.Set("multiprocessors", d.multiprocessors);
          o.Set("totalMemory", static_cast<double>(d.total_memory));
          devices.Set(static_cast<uint32_t>(i), o);
        }
        out.Set("devices", devices);
        return out;
      });
}

void register_runtime(Napi::Env env, Napi::Object exports) {
  exports.Set("memoryStats", Napi::Function::New(env, memory_stats));
  exports.Set("runtimeInfo", Napi::Function::New(env, runtime_info));
  exports.Set("cudaInfo", Napi::Function::New(env, cuda_info));
  exports.Set("setActivationMemoryLimit", Napi::Function::New(env, set_memory_limit));
  exports.Set("setNumThreads", Napi::Function::New(env, set_num_threads));
}

}  // namespace fusediff::binding
