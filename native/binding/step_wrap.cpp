#include "binding/step_wrap.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "backend/device_step.h"
#include "binding/async.h"
#include "binding/errors.h"
#include "binding/tensor_wrap.h"
#include "core/thread_pool.h"
#include "kernels/step.h"

namespace fusediff::binding {
namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;

bool absent(const Napi::Value& v) { return v.IsUndefined() || v.IsNull(); }

TensorPtr optional_tensor(Napi::Env env, const Napi::Value& v, const char* what) {
  return absent(v) ? nullptr : TensorWrap::unwrap(env, v, what);
}

// A per-image coefficient array: absent -> empty; otherwise a Float64Array of `batch` finite values.
std::vector<double> coefficients(Napi::Env env, const Napi::Object& o, const char* key, int64_t batch) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return {};
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw make_error(env, "E_ARGUMENT", std::string("step coefficient ") + key + " must be a Float64Array");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (static_cast<int64_t>(a.ElementLength()) != batch)
    throw make_error(env, "E_SHAPE", std::string("step coefficient ") + key + " has " + std::to_string(a.ElementLength()) +
                                         " values for a batch of " + std::to_string(batch));
  std::vector<double> out(a.Data(), a.Data() + batch);
  for (double d : out)
    if (!std::isfinite(d))
      throw make_error(env, "E_ARGUMENT", std::string("step coefficient ") + key + " is not finite (" + std::to_string(d) + ")");
  return out;
}

double number_option(Napi::Env env, const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (absent(v)) return fallback;
  if (!v.IsNumber()) throw make_error(env, "E_ARGUMENT", std::string("option ") + key + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

uint64_t integer_value(Napi::Env env, double v, const char* what) {
  if (!(v >= 0 && v <= kMaxSafeInteger && v == std::floor(v)))
    throw make_error(env, "E_ARGUMENT", std::string(what) + " must be an integer in [0, 2^53), got " + std::to_string(v));
  return static_cast<uint64_t>(v);
}

std::vector<uint64_t> seeds_option(Napi::Env env, const Napi::Value& v, int64_t batch) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw make_error(env, "E_ARGUMENT", "seeds must be a Float64Array");
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  if (static_cast<int64_t>(a.ElementLength()) != batch)
    throw make_error(env, "E_SHAPE", "got " + std::to_string(a.ElementLength()) + " seeds for a batch of " + std::to_string(batch));
  std::vector<uint64_t> out;
  for (size_t i = 0; i < a.ElementLength(); ++i) out.push_back(integer_value(env, a[i], "a seed"));
  return out;
}

// Batch, channels and pixels (product of the dimensions after the second) of an image batch.
struct Dims {
  int64_t batch = 0, channels = 1, pixels = 1;
};

Dims dims_of(Napi::Env env, const std::vector<int64_t>& shape, const char* what) {
  if (shape.size() < 2) throw make_error(env, "E_SHAPE", std::string(what) + " must have a batch and a channel dimension");
  Dims d;
  d.batch = shape[0];
  d.channels = shape[1];
  for (size_t i = 2; i < shape.size(); ++i) d.pixels *= shape[i];
  if (d.batch < 1 || d.channels < 1 || d.pixels < 1) throw make_error(env, "E_SHAPE", std::string(what) + " is empty");
  return d;
}

std::string shape_str(const std::vector<int64_t>& s) { return shape_to_string(s); }

// The model output of a step for samples of shape `shape`: [B or 2B (guided), C or 2C, ...].
kernels::ModelOutputView model_view(Napi::Env env, const TensorPtr& m, const std::vector<int64_t>& shape, bool guided,
                                    double guidance) {
  kernels::ModelOutputView view;
  if (!m) return view;
  const std::vector<int64_t>& ms = m->shape();
  const int64_t want_batch = guided ? 2 * shape[0] : shape[0];
  bool ok = ms.size() == shape.size() && ms[0] == want_batch && (ms[1] == shape[1] || ms[1] == 2 * shape[1]);
  for (size_t i = 2; ok && i < shape.size(); ++i) ok = ms[i] == shape[i];
  if (!ok)
    throw make_error(env, "E_SHAPE", "model output " + shape_str(ms) + " does not fit samples " + shape_str(shape) +
                                         (guided ? " (guided: the batch must hold the unconditional then the conditional half)"
                                                 : " (channels may be doubled for a learned variance)"));
  view.data = m->data();
  view.m_channels = ms[1];
  view.guided = guided;
  view.guidance_scale = guidance;
  return view;
}

void same_shape(Napi::Env env, const TensorPtr& t, const std::vector<int64_t>& shape, const char* what) {
  if (t && t->shape() != shape)
    throw make_error(env, "E_SHAPE", std::string(what) + " " + shape_str(t->shape()) + " must have the sample shape " + shape_str(shape));
}

std::vector<int64_t> shape_option(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw make_error(env, "E_ARGUMENT", "shape must be an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value d = a.Get(i);
    shape.push_back(static_cast<int64_t>(integer_value(env, d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1, "a dimension")));
  }
  checked_numel(shape, "tensor");
  return shape;
}

// Everything one affine step needs, owned, for the worker thread.
struct AffineJob {
  TensorPtr x, m, z, y;
  std::vector<int64_t> shape;
  std::vector<double> ax, am, az, bx, bm, b0, bz, by, e0, e1;
  std::vector<uint64_t> seeds;
  kernels::AffineStepParams params;
  kernels::ModelOutputView view;
  kernels::NoiseSource noise;
  bool want_x0 = false;
  TensorPtr out, x0;
};

const double* ptr(const std::vector<double>& v) { return v.empty() ? nullptr : v.data(); }

Napi::Value step_affine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto job = std::make_shared<AffineJob>();
    job->x = optional_tensor(env, info[0], "sample");
    job->m = optional_tensor(env, info[1], "model output");
    job->z = optional_tensor(env, info[2], "noise");
    job->y = optional_tensor(env, info[3], "extra tensor");
    if (!info[4].IsObject()) throw make_error(env, "E_ARGUMENT", "stepAffine expects an options object");
    Napi::Object o = info[4].As<Napi::Object>();
    job->shape = job->x ? job->x->shape() : shape_option(env, o.Get("shape"));
    const Dims d = dims_of(env, job->shape, "samples");
    same_shape(env, job->z, job->shape, "noise");
    same_shape(env, job->y, job->shape, "extra tensor");
    const bool guided = !absent(o.Get("guidance"));
    job->view = model_view(env, job->m, job->shape, guided, number_option(env, o, "guidance", 1.0));
    job->ax = coefficients(env, o, "ax", d.batch), job->am = coefficients(env, o, "am", d.batch);
    job->az = coefficients(env, o, "az", d.batch), job->bx = coefficients(env, o, "bx", d.batch);
    job->bm = coefficients(env, o, "bm", d.batch), job->b0 = coefficients(env, o, "b0", d.batch);
    job->bz = coefficients(env, o, "bz", d.batch), job->by = coefficients(env, o, "by", d.batch);
    job->e0 = coefficients(env, o, "e0", d.batch), job->e1 = coefficients(env, o, "e1", d.batch);
    kernels::AffineStepParams& p = job->params;
    p.batch = d.batch, p.channels = d.channels, p.pixels = d.pixels;
    p.ax = ptr(job->ax), p.am = ptr(job->am), p.az = ptr(job->az), p.bx = ptr(job->bx), p.bm = ptr(job->bm);
    p.b0 = ptr(job->b0), p.bz = ptr(job->bz), p.by = ptr(job->by), p.e0 = ptr(job->e0), p.e1 = ptr(job->e1);
    Napi::Value clamp = o.Get("clamp"), threshold = o.Get("threshold");
    if (!absent(clamp)) {
      if (!clamp.IsArray() || clamp.As<Napi::Array>().Length() != 2)
        throw make_error(env, "E_ARGUMENT", "clamp must be [lo, hi]");
      p.clamp = kernels::ClampMode::Range;
      p.clamp_lo = clamp.As<Napi::Array>().Get(0u).ToNumber().DoubleValue();
      p.clamp_hi = clamp.As<Napi::Array>().Get(1u).ToNumber().DoubleValue();
    } else if (!absent(threshold)) {
      if (!threshold.IsArray() || threshold.As<Napi::Array>().Length() != 2)
        throw make_error(env, "E_ARGUMENT", "threshold must be [ratio, max]");
      p.clamp = kernels::ClampMode::Dynamic;
      p.threshold_ratio = threshold.As<Napi::Array>().Get(0u).ToNumber().DoubleValue();
      p.threshold_max = threshold.As<Napi::Array>().Get(1u).ToNumber().DoubleValue();
      if (!(p.threshold_ratio >= 0 && p.threshold_ratio <= 1) || !(p.threshold_max >= 1))
        throw make_error(env, "E_ARGUMENT", "threshold ratio must be in [0, 1] and max >= 1");
    }
    Napi::Value scale = o.Get("noiseScale");
    if (!absent(scale)) {
      const std::string s = scale.ToString().Utf8Value();
      if (s == "sqrtv") p.noise_scale = kernels::NoiseScaleMode::SqrtV;
      else if (s == "expv") p.noise_scale = kernels::NoiseScaleMode::ExpV;
      else if (s != "constant") throw make_error(env, "E_ARGUMENT", "noiseScale must be constant, sqrtv or expv");
    }
    if (job->z) {
      job->noise.tensor = job->z->data();
    } else if (!absent(o.Get("seeds"))) {
      job->seeds = seeds_option(env, o.Get("seeds"), d.batch);
      job->noise.seeds = job->seeds.data();
      job->noise.stream = integer_value(env, number_option(env, o, "stream", 0), "stream");
    }
    job->want_x0 = o.Get("wantX0").ToBoolean();
    return Task::run(
        env,
        [job] {
          job->out = std::make_shared<Tensor>(job->shape);
          if (job->want_x0) job->x0 = std::make_shared<Tensor>(job->shape);
          // A model output from a model on CUDA: the step runs there too.
          const int device = job->m ? job->m->source_device() : -1;
          if (device >= 0 && backend::device_step_supported(job->params))
            backend::affine_step_on_device(device, job->params, job->x ? job->x->data() : nullptr, job->view,
                                           job->m->numel(), job->noise, job->y ? job->y->data() : nullptr,
                                           job->out->data(), job->x0 ? job->x0->data() : nullptr);
          else
            kernels::affine_step(job->params, job->x ? job->x->data() : nullptr, job->view, job->noise,
                                 job->y ? job->y->data() : nullptr, job->out->data(), job->x0 ? job->x0->data() : nullptr,
                                 *ThreadPool::global());
        },
        [job](Napi::Env env) -> Napi::Value {
          Napi::Array result = Napi::Array::New(env, 2);
          result.Set(0u, TensorWrap::wrap(env, std::move(job->out)));
          result.Set(1u, job->x0 ? Napi::Value(TensorWrap::wrap(env, std::move(job->x0))) : env.Null());
          return result;
        });
  });
}

struct LangevinJob {
  TensorPtr x, m, z;
  std::vector<double> score_scale, alpha;
  std::vector<uint64_t> seeds;
  kernels::LangevinParams params;
  kernels::ModelOutputView view;
  kernels::NoiseSource noise;
  bool want_mean = false;
  TensorPtr out, mean;
  std::vector<double> step_sizes;
};

Napi::Value step_langevin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    auto job = std::make_shared<LangevinJob>();
    job->x = TensorWrap::unwrap(env, info[0], "sample");
    job->m = TensorWrap::unwrap(env, info[1], "model output");
    job->z = optional_tensor(env, info[2], "noise");
    if (!info[3].IsObject()) throw make_error(env, "E_ARGUMENT", "stepLangevin expects an options object");
    Napi::Object o = info[3].As<Napi::Object>();
    const std::vector<int64_t>& shape = job->x->shape();
    const Dims d = dims_of(env, shape, "samples");
    same_shape(env, job->z, shape, "noise");
    const bool guided = !absent(o.Get("guidance"));
    job->view = model_view(env, job->m, shape, guided, number_option(env, o, "guidance", 1.0));
    if (job->view.m_channels != d.channels)
      throw make_error(env, "E_SHAPE", "the Langevin corrector needs a model output with the sample's channels");
    job->score_scale = coefficients(env, o, "scoreScale", d.batch);
    if (job->score_scale.empty()) throw make_error(env, "E_ARGUMENT", "stepLangevin needs scoreScale");
    job->alpha = coefficients(env, o, "alpha", d.batch);
    kernels::LangevinParams& p = job->params;
    p.batch = d.batch, p.channels = d.channels, p.pixels = d.pixels;
    p.score_scale = job->score_scale.data();
    p.alpha = ptr(job->alpha);
    p.snr = number_option(env, o, "snr", 0.16);
    if (!(p.snr >= 0 && std::isfinite(p.snr))) throw make_error(env, "E_ARGUMENT", "snr must be a finite number >= 0");
    p.batch_mean_norms = o.Get("batchMean").ToBoolean();
    if (job->z) {
      job->noise.tensor = job->z->data();
    } else {
      job->seeds = seeds_option(env, o.Get("seeds"), d.batch);
      job->noise.seeds = job->seeds.data();
      job->noise.stream = integer_value(env, number_option(env, o, "stream", 0), "stream");
    }
    job->want_mean = o.Get("wantMean").ToBoolean();
    return Task::run(
        env,
        [job] {
          job->out = std::make_shared<Tensor>(job->x->shape());
          if (job->want_mean) job->mean = std::make_shared<Tensor>(job->x->shape());
          job->step_sizes.resize(static_cast<size_t>(job->params.batch));
          // A model output from a model on CUDA: the corrector runs there too.
          const int device = job->m->source_device();
          if (device >= 0)
            backend::langevin_step_on_device(device, job->params, job->x->data(), job->view, job->m->numel(), job->noise,
                                             job->out->data(), job->mean ? job->mean->data() : nullptr,
                                             job->step_sizes.data());
          else
            kernels::langevin_step(job->params, job->x->data(), job->view, job->noise, job->out->data(),
                                   job->mean ? job->mean->data() : nullptr, job->step_sizes.data(), *ThreadPool::global());
        },
        [job](Napi::Env env) -> Napi::Value {
          Napi::Array result = Napi::Array::New(env, 3);
          result.Set(0u, TensorWrap::wrap(env, std::move(job->out)));
          result.Set(1u, job->mean ? Napi::Value(TensorWrap::wrap(env, std::move(job->mean))) : env.Null());
          Napi::Float64Array eps = Napi::Float64Array::New(env, job->step_sizes.size());
          for (size_t i = 0; i < job->step_sizes.size(); ++i) eps[i] = job->step_sizes[i];
          result.Set(2u, eps);
          return result;
        });
  });
}

Napi::Value randn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const std::vector<int64_t> shape = shape_option(env, info[0]);
    if (shape.empty() || shape[0] < 1) throw make_error(env, "E_SHAPE", "noise needs a batch dimension");
    auto seeds = std::make_shared<std::vector<uint64_t>>(seeds_option(env, info[1], shape[0]));
    const uint64_t stream = integer_value(env, info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1, "stream");
    auto result = std::make_shared<TensorPtr>();
    return Task::run(
        env,
        [shape, seeds, stream, result] {
          auto t = std::make_shared<Tensor>(shape);
          const int64_t per_item = t->numel() / shape[0];
          kernels::philox_normal(t->data(), shape[0], per_item, seeds->data(), stream, *ThreadPool::global());
          *result = std::move(t);
        },
        [result](Napi::Env env) -> Napi::Value { return TensorWrap::wrap(env, std::move(*result)); });
  });
}

Napi::Value concat_batch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() == 0)
      throw make_error(env, "E_ARGUMENT", "concatBatch expects a non-empty array of tensors");
    Napi::Array a = info[0].As<Napi::Array>();
    auto parts = std::make_shared<std::vector<TensorPtr>>();
    std::vector<int64_t> shape;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      TensorPtr t = TensorWrap::unwrap(env, a.Get(i), "a tensor to concatenate");
      if (t->shape().empty()) throw make_error(env, "E_SHAPE", "cannot concatenate scalars");
      if (i == 0) {
        shape = t->shape();
      } else {
        if (t->shape().size() != shape.size() || !std::equal(shape.begin() + 1, shape.end(), t->shape().begin() + 1))
          throw make_error(env, "E_SHAPE", "cannot concatenate " + shape_str(t->shape()) + " to " + shape_str(shape));
        shape[0] += t->shape()[0];
      }
      parts->push_back(t);
    }
    auto result = std::make_shared<TensorPtr>();
    return Task::run(
        env,
        [parts, shape, result] {
          auto out = std::make_shared<Tensor>(shape);
          std::vector<const float*> ptrs;
          std::vector<int64_t> sizes;
          for (const TensorPtr& t : *parts) ptrs.push_back(t->data()), sizes.push_back(t->numel());
          kernels::concat_batch(ptrs, sizes, out->data(), *ThreadPool::global());
          *result = std::move(out);
        },
        [result](Napi::Env env) -> Napi::Value { return TensorWrap::wrap(env, std::move(*result)); });
  });
}

Napi::Value to_images(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    TensorPtr x = TensorWrap::unwrap(env, info[0], "images");
    if (x->shape().size() != 4) throw make_error(env, "E_SHAPE", "images must be [batch, channels, height, width], got " + shape_str(x->shape()));
    if (!info[1].IsArray()) throw make_error(env, "E_ARGUMENT", "toImages expects the source channel list");
    Napi::Array src = info[1].As<Napi::Array>();
    std::vector<int> source;
    for (uint32_t i = 0; i < src.Length(); ++i) {
      const int s = src.Get(i).ToNumber().Int32Value();
      if (s >= x->shape()[1]) throw make_error(env, "E_ARGUMENT", "image channel " + std::to_string(s) + " does not exist");
      source.push_back(s);
    }
    const float scale = static_cast<float>(info[2].ToNumber().DoubleValue());
    const float offset = static_cast<float>(info[3].ToNumber().DoubleValue());
    const int64_t batch = x->shape()[0], channels = x->shape()[1], pixels = x->shape()[2] * x->shape()[3];
    Napi::Uint8Array out = Napi::Uint8Array::New(env, static_cast<size_t>(batch * pixels) * source.size());
    uint8_t* dst = out.Data();
    auto keep = std::make_shared<Napi::Reference<Napi::Uint8Array>>(Napi::Persistent(out));
    return Task::run(
        env,
        [x, source, scale, offset, batch, channels, pixels, dst] {
          kernels::to_uint8_hwc(x->data(), batch, channels, pixels, source, scale, offset, dst, *ThreadPool::global());
        },
        [keep](Napi::Env) { return keep->Value(); });
  });
}

}  // namespace

void register_step(Napi::Env env, Napi::Object exports) {
  exports.Set("stepAffine", Napi::Function::New(env, step_affine, "stepAffine"));
  exports.Set("stepLangevin", Napi::Function::New(env, step_langevin, "stepLangevin"));
  exports.Set("randn", Napi::Function::New(env, randn, "randn"));
  exports.Set("concatBatch", Napi::Function::New(env, concat_batch, "concatBatch"));
  exports.Set("toImages", Napi::Function::New(env, to_images, "toImages"));
}

}  // namespace fusediff::binding
