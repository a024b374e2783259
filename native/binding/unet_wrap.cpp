#include "binding/unet_wrap.h"

#include "binding/addon_data.h"
#include "binding/async.h"
#include "binding/config_convert.h"
#include "binding/errors.h"
#include "binding/plan_describe.h"
#include "binding/tensor_wrap.h"
#include "backend/cuda_backend.h"
#include "kernels/kernels.h"
#include "unet/device_executor.h"
#include "unet/executor.h"
#include "unet/quantize.h"

namespace fusediff::binding {

namespace {
struct DeviceChoice {
  bool cuda = false;
  int index = 0;
  int math = FDC_MATH_TF32;
};

// 'cpu', 'cuda' or 'cuda:N'.
DeviceChoice parse_device(const std::string& device, const std::string& precision) {
  DeviceChoice c;
  if (device == "cpu") {
    if (!precision.empty()) fail(ErrorCode::Argument, "precision applies to device 'cuda' only (the CPU computes in float32)");
    return c;
  }
  if (device.rfind("cuda", 0) != 0) fail(ErrorCode::BackendUnavailable, "unknown device '" + device + "' (use cpu, cuda or cuda:N)");
  c.cuda = true;
  if (device.size() > 4) {
    const std::string n = device.substr(4);
    if (n.size() < 2 || n[0] != ':' || n.size() > 4 || n.find_first_not_of("0123456789", 1) != std::string::npos)
      fail(ErrorCode::BackendUnavailable, "unknown device '" + device + "' (use cpu, cuda or cuda:N)");
    c.index = std::stoi(n.substr(1));
  }
  c.math = backend::parse_cuda_math(precision);
  return c;
}

template <typename T, typename Array>
std::vector<T> optional_array(Napi::Env env, Napi::Value v, const char* what) {
  if (v.IsUndefined() || v.IsNull()) return {};
  if (!v.IsTypedArray()) throw make_error(env, "E_ARGUMENT", std::string(what) + " must be a typed array");
  Array a = v.As<Array>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}
std::vector<std::string> string_array(Napi::Env env, Napi::Value v, const char* what) {
  std::vector<std::string> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw make_error(env, "E_ARGUMENT", std::string(what) + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsString()) throw make_error(env, "E_ARGUMENT", std::string(what) + " must be an array of strings");
    out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  }
  return out;
}

}  // namespace

Napi::Function UNetWrap::define(Napi::Env env) {
  return DefineClass(env, "NativeUNet",
                     {StaticMethod<&UNetWrap::load>("load"),
                      StaticMethod<&UNetWrap::expected_weights>("expectedWeights"),
                      StaticMethod<&UNetWrap::expected_plan>("expectedPlan"),
                      StaticMethod<&UNetWrap::layers>("layers"),
                      StaticMethod<&UNetWrap::quantize>("quantize"),
                      InstanceMethod<&UNetWrap::forward>("forward"), InstanceMethod<&UNetWrap::info>("info"),
                      InstanceMethod<&UNetWrap::arena_bytes>("arenaBytes"),
                      InstanceMethod<&UNetWrap::describe>("describe"),
                      InstanceMethod<&UNetWrap::release_cached_memory>("releaseCachedMemory"),
                      InstanceMethod<&UNetWrap::dispose>("dispose")});
}

UNetWrap::UNetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UNetWrap>(info) {}

std::shared_ptr<unet::Runner> UNetWrap::executor(Napi::Env env) {
  if (!executor_) throw make_error(env, "E_DISPOSED", "this UNet has been disposed");
  return executor_;
}

Napi::Value UNetWrap::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw make_error(env, "E_ARGUMENT", "load expects a config object");
    unet::UNetConfig config = to_unet_config(env, info[0].As<Napi::Object>());
    if (!info[1].IsArray()) throw make_error(env, "E_ARGUMENT", "load expects an array of weight file paths");
    std::vector<std::string> paths;
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) paths.push_back(a.Get(i).ToString().Utf8Value());
    unet::PrecisionOptions precision;
    if (info[3].IsObject()) {
      Napi::Object o = info[3].As<Napi::Object>();
      const Napi::Value mode = o.Get("precision");
      if (mode.IsString()) {
        const std::string m = mode.As<Napi::String>().Utf8Value();
        if (m == "int8")
          precision.mode = kernels::Precision::I8;
        else if (m == "bfloat16")
          precision.mode = kernels::Precision::BF16;
        else if (m != "float32")
          throw make_error(env, "E_ARGUMENT", "precision must be float32, int8 or bfloat16, got " + m);
      }
      precision.float_layers = string_array(env, o.Get("floatLayers"), "floatLayers");
      const Napi::Value qf = o.Get("quantizeFloatWeights");
      if (qf.IsBoolean()) precision.quantize_float_weights = qf.As<Napi::Boolean>().Value();
    }
    const std::string device = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : "cpu";
    const std::string device_precision = info[5].IsString() ? info[5].As<Napi::String>().Utf8Value() : "";
    const DeviceChoice choice = parse_device(device, device_precision);
    if (choice.cuda && precision.mode != kernels::Precision::F32)
      throw make_error(env, "E_UNSUPPORTED", "int8 and bfloat16 models run on the CPU only for now (use device 'cpu')");
    const kernels::KernelTable* table = choice.cuda ? &kernels::reference_kernels()  // PyTorch layout, packed by the device
                                        : info[2].IsString() ? &kernels::kernels_by_name(info[2].As<Napi::String>().Utf8Value())
                                                             : &kernels::select_kernels();
    auto result = std::make_shared<std::shared_ptr<unet::Runner>>();
    return Task::run(
        env,
        [config, paths, table, precision, choice, result] {
          // The device first: a missing library, driver or GPU fails before any file is read.
          std::unique_ptr<backend::DeviceBackend> device_backend;
          if (choice.cuda) device_backend = backend::make_cuda_backend(choice.index, choice.math);
          std::vector<std::shared_ptr<unet::WeightFile>> files;
          for (const auto& p : paths) files.push_back(unet::open_weight_file(p));
          unet::FileWeights weights(std::move(files));
          unet::Plan plan = unet::build_plan(config, weights, *table, false, precision);
          if (device_backend)
            *result = std::make_shared<unet::DeviceExecutor>(std::move(plan), std::move(device_backend));
          else
            *result = std::make_shared<unet::Executor>(std::move(plan));
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object obj = addon_data(env).unet_class.New({});
          Unwrap(obj)->executor_ = std::move(*result);
          return obj;
        });
  });
}

Napi::Value UNetWrap::expected_weights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw make_error(env, "E_ARGUMENT", "expectedWeights expects a config object");
    unet::UNetConfig config = to_unet_config(env, info[0].As<Napi::Object>());
    unet::WeightRecorder recorder;
    unet::build_plan(config, recorder, kernels::reference_kernels(), /*dry_run=*/true);
    Napi::Array out = Napi::Array::New(env, recorder.entries().size());
    for (size_t i = 0; i < recorder.entries().size(); ++i) {
      const auto& e = recorder.entries()[i];
      Napi::Object item = Napi::Object::New(env);
      item.Set("name", e.name);
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (size_t j = 0; j < e.shape.size(); ++j) shape.Set(static_cast<uint32_t>(j), static_cast<double>(e.shape[j]));
      item.Set("shape", shape);
      out.Set(static_cast<uint32_t>(i), item);
    }
    return out;
  });
}

Napi::Value UNetWrap::expected_plan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw make_error(env, "E_ARGUMENT", "expectedPlan expects a config object");
    unet::UNetConfig config = to_unet_config(env, info[0].As<Napi::Object>());
    unet::WeightRecorder recorder;
    return describe_plan(env, unet::build_plan(config, recorder, kernels::reference_kernels(), /*dry_run=*/true));
  });
}

Napi::Value UNetWrap::layers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw make_error(env, "E_ARGUMENT", "layers expects a config object");
    const std::vector<unet::LayerInfo> layers = unet::plan_layers(to_unet_config(env, info[0].As<Napi::Object>()));
    Napi::Array out = Napi::Array::New(env, layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      Napi::Object item = Napi::Object::New(env);
      item.Set("name", layers[i].name);
      Napi::Array shape = Napi::Array::New(env, layers[i].shape.size());
      for (size_t j = 0; j < layers[i].shape.size(); ++j) shape.Set(static_cast<uint32_t>(j), static_cast<double>(layers[i].shape[j]));
      item.Set("shape", shape);
      Napi::Array group = Napi::Array::New(env, layers[i].group.size());
      for (size_t j = 0; j < layers[i].group.size(); ++j) group.Set(static_cast<uint32_t>(j), layers[i].group[j]);
      item.Set("group", group);
      out.Set(static_cast<uint32_t>(i), item);
    }
    return out;
  });
}

Napi::Value UNetWrap::quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsObject() || !info[1].IsArray() || !info[2].IsString())
      throw make_error(env, "E_ARGUMENT", "quantize expects (config, weightFiles: string[], destination: string, floatLayers?: string[])");
    unet::UNetConfig config = to_unet_config(env, info[0].As<Napi::Object>());
    std::vector<std::string> paths = string_array(env, info[1], "weightFiles");
    const std::string destination = info[2].As<Napi::String>().Utf8Value();
    std::vector<std::string> float_layers = string_array(env, info[3], "floatLayers");
    auto result = std::make_shared<unet::QuantizeResult>();
    return Task::run(
        env,
        [config, paths, destination, float_layers, result] {
          std::vector<std::shared_ptr<unet::WeightFile>> files;
          for (const auto& p : paths) files.push_back(unet::open_weight_file(p));
          *result = unet::write_quantized(config, std::move(files), destination, float_layers);
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          Napi::Array layers = Napi::Array::New(env, result->layers.size());
          for (size_t i = 0; i < result->layers.size(); ++i) {
            Napi::Object l = Napi::Object::New(env);
            l.Set("name", result->layers[i].name);
            l.Set("int8", result->layers[i].int8);
            l.Set("relativeError", result->layers[i].relative_error);
            layers.Set(static_cast<uint32_t>(i), l);
          }
          out.Set("layers", layers);
          out.Set("tensors", static_cast<double>(result->tensors));
          out.Set("bytes", static_cast<double>(result->bytes));
          return out;
        });
  });
}

Napi::Value UNetWrap::forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto exec = executor(env);
    TensorPtr sample = TensorWrap::unwrap(env, info[0], "sample");
    if (!info[1].IsObject()) throw make_error(env, "E_ARGUMENT", "forward expects an options object");
    Napi::Object o = info[1].As<Napi::Object>();
    auto input = std::make_shared<unet::ForwardInput>();
    input->timesteps = optional_array<double, Napi::Float64Array>(env, o.Get("timesteps"), "timesteps");
    std::vector<double> ids = optional_array<double, Napi::Float64Array>(env, o.Get("classIds"), "class ids");
    for (double id : ids) {
      if (id != static_cast<double>(static_cast<int64_t>(id)))
        throw make_error(env, "E_ARGUMENT", "class labels must be integers, got " + std::to_string(id));
      input->class_ids.push_back(static_cast<int64_t>(id));
    }
    input->class_values = optional_array<double, Napi::Float64Array>(env, o.Get("classValues"), "class values");
    input->class_vectors = optional_array<float, Napi::Float32Array>(env, o.Get("classVectors"), "class vectors");
    input->circular_padding = o.Get("tileable").ToBoolean().Value();
    const bool profile = o.Get("profile").ToBoolean().Value();
    auto op_seconds = std::make_shared<std::vector<double>>();
    auto result = std::make_shared<TensorPtr>();
    return Task::run(
        env,
        [exec, sample, input, result, op_seconds, profile] {
          input->sample = sample.get();
          if (profile) input->op_seconds = op_seconds.get();
          *result = exec->forward(*input);
        },
        [result, op_seconds, profile](Napi::Env env) -> Napi::Value {
          Napi::Object tensor = TensorWrap::wrap(env, std::move(*result));
          if (!profile) return tensor;
          Napi::Object out = Napi::Object::New(env);
          out.Set("output", tensor);
          Napi::Float64Array seconds = Napi::Float64Array::New(env, op_seconds->size());
          std::copy(op_seconds->begin(), op_seconds->end(), seconds.Data());
          out.Set("opSeconds", seconds);
          return out;
        });
  });
}

Napi::Value UNetWrap::info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto exec = executor(env);
  const unet::Plan& plan = exec->plan();
  Napi::Object out = Napi::Object::New(env);
  out.Set("parameterCount", static_cast<double>(plan.parameter_count));
  out.Set("kernels", exec->kernels_name());
  out.Set("lowpKernels", plan.kernels->lowp_name);
  // Layers (ops and linear layers) per precision.
  int counts[3] = {0, 0, 0};
  auto count = [&](const kernels::PackedConv& w) { ++counts[static_cast<int>(w.precision)]; };
  for (const unet::Op& op : plan.ops)
    if (const auto* c = std::get_if<unet::ConvOp>(&op)) count(c->weight);
  for (const unet::Linear* l : {&plan.time_linear_1, &plan.time_linear_2, &plan.temb_proj}) count(l->weight);
  if (plan.config.class_embed_type == unet::ClassEmbed::Timestep)
    for (const unet::Linear* l : {&plan.class_linear_1, &plan.class_linear_2}) count(l->weight);
  Napi::Object precisions = Napi::Object::New(env);
  precisions.Set("float32", counts[0]);
  precisions.Set("int8", counts[1]);
  precisions.Set("bfloat16", counts[2]);
  out.Set("opPrecisions", precisions);
  out.Set("numDownsamples", plan.num_downsamples);
  out.Set("timeEmbeddingDim", plan.time_dim);
  out.Set("numOps", static_cast<double>(plan.ops.size()));
  return out;
}

Napi::Value UNetWrap::release_cached_memory(const Napi::CallbackInfo& info) {
  executor(info.Env())->trim();
  return info.Env().Undefined();
}

Napi::Value UNetWrap::describe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return describe_plan(env, executor(env)->plan());
}

Napi::Value UNetWrap::arena_bytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto exec = executor(env);
    const int n = info[0].ToNumber().Int32Value(), h = info[1].ToNumber().Int32Value(), w = info[2].ToNumber().Int32Value();
    return Napi::Number::New(env, static_cast<double>(exec->arena_bytes(n, h, w)));
  });
}

Napi::Value UNetWrap::dispose(const Napi::CallbackInfo& info) {
  executor_.reset();
  return info.Env().Undefined();
}

}  // namespace fusediff::binding
