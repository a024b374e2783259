// benchConv2d({ batch, height, width, inChannels, outChannels, kernel, stride, iterations, warmup })
//   -> Promise<{ kernels, seconds: number[] }>
//
// Why a hook: the per-layer GFLOP/s of the largest 3x3 convolutions cannot be isolated
// through a UNet forward (every config has dozens of other ops). This calls the same
// kernel-table entries the executor calls (pack_conv once, then conv2d with a bias epilogue)
// on NHWC data with synthetic values, off the JS thread, and returns each timed iteration.
// It adds no kernel code: only glue around KernelTable.
#include "binding/bench_hook.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binding/async.h"
#include "binding/errors.h"
#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace fusediff::binding {
namespace {

int int_field(const Napi::Object& o, const char* name, int lo, int hi) {
  const Napi::Value v = o.Get(name);
  if (!v.IsNumber()) fail(ErrorCode::Argument, std::string("benchConv2d: ") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != static_cast<double>(static_cast<int>(d)))
    fail(ErrorCode::Argument, std::string("benchConv2d: ") + name + " must be an integer in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "]");
  return static_cast<int>(d);
}

// Deterministic values in [-scale, scale): the timing does not depend on them, but NaNs or
// denormals could, so they are kept ordinary.
void fill(float* p, int64_t n, float scale, uint32_t seed) {
  uint32_t s = seed;
  for (int64_t i = 0; i < n; ++i) {
    s = s * 1664525u + 1013904223u;
    p[i] = scale * (static_cast<float>(s >> 8) / 8388608.0f - 1.0f);
  }
}

Napi::Value bench_conv2d(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsObject()) fail(ErrorCode::Argument, "benchConv2d expects an options object");
    const Napi::Object o = info[0].As<Napi::Object>();
    kernels::Conv2dParams p;
    p.batch = int_field(o, "batch", 1, 256);
    p.in_h = int_field(o, "height", 1, 4096);
    p.in_w = int_field(o, "width", 1, 4096);
    p.in_c = int_field(o, "inChannels", 1, 8192);
    p.out_c = int_field(o, "outChannels", 1, 8192);
    p.kernel = int_field(o, "kernel", 1, 3);
    p.stride = int_field(o, "stride", 1, 2);
    if (p.kernel == 2) fail(ErrorCode::Argument, "benchConv2d: kernel must be 1 or 3");
    const int iterations = int_field(o, "iterations", 1, 100000);
    const int warmup = int_field(o, "warmup", 0, 100000);
    p.pad_top = p.pad_left = p.kernel / 2;  // "same" padding, as the plan's 3x3 convs
    p.out_h = (p.in_h + 2 * p.pad_top - p.kernel) / p.stride + 1;
    p.out_w = (p.in_w + 2 * p.pad_left - p.kernel) / p.stride + 1;

    const kernels::KernelTable& table = kernels::select_kernels();
    auto seconds = std::make_shared<std::vector<double>>();
    auto work = [p, iterations, warmup, &table, seconds]() {
      const int64_t in_n = static_cast<int64_t>(p.batch) * p.in_h * p.in_w * p.in_c;
      const int64_t out_n = static_cast<int64_t>(p.batch) * p.out_h * p.out_w * p.out_c;
      const int64_t w_n = static_cast<int64_t>(p.out_c) * p.in_c * p.kernel * p.kernel;
      AlignedBuffer x(in_n * sizeof(float)), y(out_n * sizeof(float)), w(w_n * sizeof(float)), bias(p.out_c * sizeof(float));
      fill(x.f32(), in_n, 1.0f, 1);
      fill(w.f32(), w_n, 0.05f, 2);
      fill(bias.f32(), p.out_c, 0.05f, 3);
      kernels::PackedConv packed;
      table.pack_conv(w.f32(), p.out_c, p.in_c, p.kernel,
                      kernels::float_conv_algorithm(p.kernel, p.stride, p.pad_top, p.in_c, p.out_c), &packed);
      kernels::ConvEpilogue e;
      e.bias = bias.f32();
      const std::shared_ptr<ThreadPool> pool_owner = ThreadPool::global();
      ThreadPool& pool = *pool_owner;
      for (int i = 0; i < warmup; ++i) table.conv2d(p, x.f32(), packed, e, y.f32(), pool);
      seconds->reserve(iterations);
      for (int i = 0; i < iterations; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        table.conv2d(p, x.f32(), packed, e, y.f32(), pool);
        seconds->push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    };
    auto finish = [&table, seconds](Napi::Env env) -> Napi::Value {
      Napi::Object out = Napi::Object::New(env);
      out.Set("kernels", table.name);
      Napi::Array list = Napi::Array::New(env, seconds->size());
      for (size_t i = 0; i < seconds->size(); ++i) list.Set(static_cast<uint32_t>(i), (*seconds)[i]);
      out.Set("seconds", list);
      return out;
    };
    return Task::run(env, work, finish);
  });
}

}  // namespace

void register_bench_hook(Napi::Env env, Napi::Object exports) {
  exports.Set("benchConv2d", Napi::Function::New(env, bench_conv2d));
}

}  // namespace fusediff::binding
