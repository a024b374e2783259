#include "binding/plan_describe.h"

namespace fusediff::binding {
namespace {

Napi::Array strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

const char* precision_name(kernels::Precision p) {
  switch (p) {
    case kernels::Precision::F32: return "float32";
    case kernels::Precision::I8: return "int8";
    case kernels::Precision::BF16: return "bfloat16";
  }
  return "?";
}

Napi::Object linear(Napi::Env env, const unet::Linear& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("sources", strings(env, l.sources));
  o.Set("in", l.in);
  o.Set("out", l.out);
  o.Set("precision", precision_name(l.weight.precision));
  return o;
}

Napi::Object op_object(Napi::Env env, const unet::Op& op) {
  Napi::Object o = Napi::Object::New(env);
  if (const auto* c = std::get_if<unet::ConvOp>(&op)) {
    o.Set("op", "conv");
    o.Set("sources", strings(env, c->sources));
    o.Set("in", c->in);
    o.Set("out", c->out);
    o.Set("kernel", c->kernel);
    o.Set("stride", c->stride);
    o.Set("pad", c->pad);
    o.Set("tembOffset", c->temb_offset);
    o.Set("residual", c->residual);
    o.Set("outputScale", c->output_scale);
    o.Set("precision", precision_name(c->weight.precision));
    o.Set("algorithm", c->weight.algorithm == kernels::ConvAlgorithm::Winograd2x2 ? "winograd" : "direct");
  } else if (const auto* n = std::get_if<unet::NormOp>(&op)) {
    o.Set("op", "groupnorm");
    o.Set("source", n->source);
    o.Set("in", n->in);
    o.Set("out", n->out);
    o.Set("groups", n->groups);
    o.Set("eps", n->eps);
    o.Set("silu", n->silu);
    o.Set("scaleShiftOffset", n->scale_shift_offset);
  } else if (const auto* a = std::get_if<unet::AttentionOp>(&op)) {
    o.Set("op", "attention");
    o.Set("in", a->in);
    o.Set("out", a->out);
    o.Set("heads", a->heads);
  } else if (const auto* r = std::get_if<unet::ResampleOp>(&op)) {
    o.Set("op", r->kind == unet::ResampleOp::UpsampleNearest2x ? "upsample2x" : "avgpool2x2");
    o.Set("in", r->in);
    o.Set("out", r->out);
  } else if (const auto* k = std::get_if<unet::ConcatOp>(&op)) {
    o.Set("op", "concat");
    o.Set("a", k->a);
    o.Set("b", k->b);
    o.Set("out", k->out);
  }
  return o;
}

}  // namespace

Napi::Object describe_plan(Napi::Env env, const unet::Plan& plan) {
  const unet::UNetConfig& c = plan.config;
  Napi::Object d = Napi::Object::New(env);
  Napi::Object time = Napi::Object::New(env);
  time.Set("type", c.time_embedding_type == unet::TimeEmbedding::Fourier ? "fourier" : "positional");
  time.Set("projDim", plan.proj_dim);
  time.Set("dim", plan.time_dim);
  time.Set("flipSinToCos", c.flip_sin_to_cos);
  time.Set("freqShift", c.freq_shift);
  time.Set("linear1", linear(env, plan.time_linear_1));
  time.Set("linear2", linear(env, plan.time_linear_2));
  d.Set("time", time);
  Napi::Object cls = Napi::Object::New(env);
  switch (c.class_embed_type) {
    case unet::ClassEmbed::None: cls.Set("type", env.Null()); break;
    case unet::ClassEmbed::Embedding:
      cls.Set("type", "embedding");
      cls.Set("numClasses", c.num_class_embeds);
      break;
    case unet::ClassEmbed::Timestep:
      cls.Set("type", "timestep");
      cls.Set("linear1", linear(env, plan.class_linear_1));
      cls.Set("linear2", linear(env, plan.class_linear_2));
      break;
    case unet::ClassEmbed::Identity: cls.Set("type", "identity"); break;
  }
  d.Set("classEmbedding", cls);
  d.Set("tembProj", linear(env, plan.temb_proj));
  d.Set("centerInputSample", c.center_input_sample);
  d.Set("inChannels", c.in_channels);
  d.Set("outChannels", c.out_channels);
  d.Set("numDownsamples", plan.num_downsamples);
  Napi::Array values = Napi::Array::New(env, plan.values.size());
  for (size_t i = 0; i < plan.values.size(); ++i) {
    Napi::Object v = Napi::Object::New(env);
    v.Set("scale", plan.values[i].scale);
    v.Set("channels", plan.values[i].channels);
    values.Set(static_cast<uint32_t>(i), v);
  }
  d.Set("values", values);
  d.Set("input", plan.input);
  d.Set("output", plan.output);
  Napi::Array ops = Napi::Array::New(env, plan.ops.size());
  for (size_t i = 0; i < plan.ops.size(); ++i) ops.Set(static_cast<uint32_t>(i), op_object(env, plan.ops[i]));
  d.Set("ops", ops);
  return d;
}

}  // namespace fusediff::binding
