#include "binding/config_convert.h"

#include <cmath>
#include <map>

#include "binding/errors.h"

namespace fusediff::binding {
namespace {

[[noreturn]] void bad(const std::string& key, const std::string& want) {
  fail(ErrorCode::Config, "config key '" + key + "' must be " + want);
}

int get_int(Napi::Object o, const std::string& key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) bad(key, "an integer");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(std::fabs(d) <= 2147483647.0) || d != std::floor(d)) bad(key, "an integer");
  return static_cast<int>(d);
}

double get_number(Napi::Object o, const std::string& key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) bad(key, "a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

bool get_bool(Napi::Object o, const std::string& key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) bad(key, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::optional<int> get_optional_int(Napi::Object o, const std::string& key) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return get_int(o, key);
}

template <typename E>
E get_enum(Napi::Object o, const std::string& key, const std::map<std::string, E>& names) {
  Napi::Value v = o.Get(key);
  const std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : (v.IsNull() ? "null" : "");
  auto it = names.find(s);
  if (it == names.end()) fail(ErrorCode::Unsupported, "config key '" + key + "' has unsupported value '" + s + "'");
  return it->second;
}

std::vector<unet::BlockKind> get_blocks(Napi::Object o, const std::string& key) {
  static const std::map<std::string, unet::BlockKind> names{
      {"DownBlock2D", unet::BlockKind::Down},           {"AttnDownBlock2D", unet::BlockKind::AttnDown},
      {"ResnetDownsampleBlock2D", unet::BlockKind::ResnetDownsample}, {"UpBlock2D", unet::BlockKind::Up},
      {"AttnUpBlock2D", unet::BlockKind::AttnUp},       {"ResnetUpsampleBlock2D", unet::BlockKind::ResnetUpsample}};
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) bad(key, "an array of block type names");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 16) bad(key, "at most 16 blocks long");
  std::vector<unet::BlockKind> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value e = a.Get(i);
    const std::string s = e.IsString() ? e.As<Napi::String>().Utf8Value() : "";
    auto it = names.find(s);
    if (it == names.end())
      fail(ErrorCode::Unsupported, "config key '" + key + "[" + std::to_string(i) + "]' has unsupported block type '" + s + "'");
    out.push_back(it->second);
  }
  return out;
}

std::vector<int> get_int_array(Napi::Object o, const std::string& key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) bad(key, "an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() > 16) bad(key, "at most 16 entries long");
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Object holder = Napi::Object::New(o.Env());
    holder.Set(key, a.Get(i));
    out.push_back(get_int(holder, key));
  }
  return out;
}

}  // namespace

unet::UNetConfig to_unet_config(Napi::Env, Napi::Object o) {
  using namespace unet;
  UNetConfig c;
  c.in_channels = get_int(o, "in_channels");
  c.out_channels = get_int(o, "out_channels");
  c.center_input_sample = get_bool(o, "center_input_sample");
  c.time_embedding_type = get_enum<TimeEmbedding>(
      o, "time_embedding_type", {{"positional", TimeEmbedding::Positional}, {"fourier", TimeEmbedding::Fourier}});
  c.time_embedding_dim = get_optional_int(o, "time_embedding_dim").value_or(0);
  c.flip_sin_to_cos = get_bool(o, "flip_sin_to_cos");
  c.freq_shift = get_number(o, "freq_shift");
  c.down_blocks = get_blocks(o, "down_block_types");
  c.up_blocks = get_blocks(o, "up_block_types");
  c.block_out_channels = get_int_array(o, "block_out_channels");
  c.layers_per_block = get_int(o, "layers_per_block");
  c.mid_block_scale_factor = get_number(o, "mid_block_scale_factor");
  c.downsample_padding = get_int(o, "downsample_padding");
  c.downsample_type = get_enum<Resample>(o, "downsample_type", {{"conv", Resample::Conv}, {"resnet", Resample::Resnet}});
  c.upsample_type = get_enum<Resample>(o, "upsample_type", {{"conv", Resample::Conv}, {"resnet", Resample::Resnet}});
  c.attention_head_dim = get_optional_int(o, "attention_head_dim");
  c.norm_num_groups = get_int(o, "norm_num_groups");
  c.attn_norm_num_groups = get_optional_int(o, "attn_norm_num_groups");
  c.norm_eps = get_number(o, "norm_eps");
  c.resnet_time_scale_shift = get_enum<TimeScaleShift>(
      o, "resnet_time_scale_shift", {{"default", TimeScaleShift::Default}, {"scale_shift", TimeScaleShift::ScaleShift}});
  c.add_attention = get_bool(o, "add_attention");
  const std::optional<int> classes = get_optional_int(o, "num_class_embeds");
  c.class_embed_type = get_enum<ClassEmbed>(o, "class_embed_type",
                                            {{"null", classes ? ClassEmbed::Embedding : ClassEmbed::None},
                                             {"timestep", ClassEmbed::Timestep},
                                             {"identity", ClassEmbed::Identity}});
  c.num_class_embeds = classes.value_or(0);
  return c;
}

}  // namespace fusediff::binding
