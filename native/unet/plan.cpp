// Config -> plan, following diffusers' UNet2DModel block wiring (see the fixture README,
// section 6, for the math this must match).
#include "unet/plan.h"

#include <string>

#include "core/error.h"

namespace fusediff::unet {
namespace {

using Shape = std::vector<int64_t>;

const char* block_name(BlockKind kind) {
  switch (kind) {
    case BlockKind::Down: return "DownBlock2D";
    case BlockKind::AttnDown: return "AttnDownBlock2D";
    case BlockKind::ResnetDownsample: return "ResnetDownsampleBlock2D";
    case BlockKind::Up: return "UpBlock2D";
    case BlockKind::AttnUp: return "AttnUpBlock2D";
    case BlockKind::ResnetUpsample: return "ResnetUpsampleBlock2D";
  }
  return "?";
}

class Builder {
 public:
  Builder(const UNetConfig& config, WeightSource& weights, const kernels::KernelTable& kernels, bool dry_run,
          const PrecisionOptions& precision)
      : c_(config), w_(weights), k_(kernels), dry_(dry_run), precision_(precision) {
    plan_.config = config;
    plan_.kernels = &kernels;
  }

  Plan build() {
    validate();
    time_embedding();
    const int c0 = c_.block_out_channels[0];
    plan_.input = new_value(0, c_.in_channels);
    int x = conv(plan_.input, "conv_in", c_.in_channels, c0, 3, 1, 1);
    std::vector<int> skips{x};

    // Down path.
    int channels = c0;
    const int levels = static_cast<int>(c_.block_out_channels.size());
    for (int i = 0; i < levels; ++i) {
      const BlockKind kind = c_.down_blocks[i];
      const int out_c = c_.block_out_channels[i];
      const std::string prefix = "down_blocks." + std::to_string(i);
      const bool attn = kind == BlockKind::AttnDown;
      for (int j = 0; j < c_.layers_per_block; ++j) {
        x = resnet(x, prefix + ".resnets." + std::to_string(j), channels, out_c, Resize::None, 1.0);
        channels = out_c;
        if (attn) x = attention(x, prefix + ".attentions." + std::to_string(j), channels, c_.norm_num_groups, 1.0);
        skips.push_back(x);
      }
      if (i + 1 < levels) {
        const bool resnet_down =
            kind == BlockKind::ResnetDownsample || (kind == BlockKind::AttnDown && c_.downsample_type == Resample::Resnet);
        if (resnet_down)
          x = resnet(x, prefix + ".downsamplers.0", channels, channels, Resize::Down, 1.0);
        else
          x = conv(x, prefix + ".downsamplers.0.conv", channels, channels, 3, 2, c_.downsample_padding);
        ++plan_.num_downsamples;
        skips.push_back(x);
      }
    }

    // Mid block: resnet, attention (optional), resnet; all rescaled by mid_block_scale_factor.
    const int mid_c = c_.block_out_channels.back();
    x = resnet(x, "mid_block.resnets.0", mid_c, mid_c, Resize::None, c_.mid_block_scale_factor);
    if (c_.add_attention) {
      int groups = 0;  // 0: no GroupNorm (diffusers' rule for scale_shift models without attn groups)
      if (c_.attn_norm_num_groups)
        groups = *c_.attn_norm_num_groups;
      else if (c_.resnet_time_scale_shift == TimeScaleShift::Default)
        groups = c_.norm_num_groups;
      x = attention(x, "mid_block.attentions.0", mid_c, groups, c_.mid_block_scale_factor);
    }
    x = resnet(x, "mid_block.resnets.1", mid_c, mid_c, Resize::None, c_.mid_block_scale_factor);

    // Up path: each resnet takes the running value concatenated with the newest skip.
    channels = mid_c;
    for (int i = 0; i < levels; ++i) {
      const BlockKind kind = c_.up_blocks[i];
      const int out_c = c_.block_out_channels[levels - 1 - i];
      const std::string prefix = "up_blocks." + std::to_string(i);
      const bool attn = kind == BlockKind::AttnUp;
      for (int j = 0; j <= c_.layers_per_block; ++j) {
        const int skip = skips.back();
        skips.pop_back();
        const int skip_c = plan_.values[skip].channels;
        if (plan_.values[skip].scale != plan_.values[x].scale)
          fail(ErrorCode::Internal, "skip connection scale mismatch at " + prefix);
        const int cat = new_value(plan_.values[x].scale, channels + skip_c);
        plan_.ops.push_back(ConcatOp{x, skip, cat});
        x = resnet(cat, prefix + ".resnets." + std::to_string(j), channels + skip_c, out_c, Resize::None, 1.0);
        channels = out_c;
        if (attn) x = attention(x, prefix + ".attentions." + std::to_string(j), channels, c_.norm_num_groups, 1.0);
      }
      if (i + 1 < levels) {
        const bool resnet_up =
            kind == BlockKind::ResnetUpsample || (kind == BlockKind::AttnUp && c_.upsample_type == Resample::Resnet);
        if (resnet_up) {
          x = resnet(x, prefix + ".upsamplers.0", channels, channels, Resize::Up, 1.0);
        } else {
          const int up = new_value(plan_.values[x].scale - 1, channels);
          plan_.ops.push_back(ResampleOp{ResampleOp::UpsampleNearest2x, x, up});
          x = conv(up, prefix + ".upsamplers.0.conv", channels, channels, 3, 1, 1);
        }
      }
    }

    x = norm(x, "conv_norm_out", c0, c_.norm_num_groups, true, -1);
    plan_.output = conv(x, "conv_out", c0, c_.out_channels, 3, 1, 1);
    finish_temb_proj();
    return std::move(plan_);
  }

 private:
  enum class Resize { None, Up, Down };

  void validate() {
    const auto& ch = c_.block_out_channels;
    if (ch.empty()) fail(ErrorCode::Config, "block_out_channels must not be empty");
    if (c_.down_blocks.size() != ch.size())
      fail(ErrorCode::Config, "down_block_types has " + std::to_string(c_.down_blocks.size()) +
                                  " entries but block_out_channels has " + std::to_string(ch.size()));
    if (c_.up_blocks.size() != ch.size())
      fail(ErrorCode::Config, "up_block_types has " + std::to_string(c_.up_blocks.size()) +
                                  " entries but block_out_channels has " + std::to_string(ch.size()));
    if (c_.layers_per_block < 1) fail(ErrorCode::Config, "layers_per_block must be >= 1");
    if (c_.in_channels < 1 || c_.out_channels < 1) fail(ErrorCode::Config, "in_channels and out_channels must be >= 1");
    if (c_.downsample_padding != 0 && c_.downsample_padding != 1)
      fail(ErrorCode::Unsupported, "downsample_padding " + std::to_string(c_.downsample_padding) + " (supported: 0, 1)");
    for (size_t i = 0; i < c_.down_blocks.size(); ++i) {
      BlockKind k = c_.down_blocks[i];
      if (k != BlockKind::Down && k != BlockKind::AttnDown && k != BlockKind::ResnetDownsample)
        fail(ErrorCode::Config, std::string("down_block_types[") + std::to_string(i) + "] is the up block " + block_name(k));
      BlockKind u = c_.up_blocks[i];
      if (u != BlockKind::Up && u != BlockKind::AttnUp && u != BlockKind::ResnetUpsample)
        fail(ErrorCode::Config, std::string("up_block_types[") + std::to_string(i) + "] is the down block " + block_name(u));
    }
    const size_t levels = ch.size();
    for (size_t i = 0; i < levels; ++i) {
      const int v = ch[i];
      if (v < 1 || v > 65536) fail(ErrorCode::Config, "block_out_channels value " + std::to_string(v) + " is out of range");
      check_groups(v, c_.norm_num_groups, "norm_num_groups");
      // The head size only matters where there is attention (as in diffusers): the Attn
      // blocks' widths (up block i works at level levels-1-i) and the mid block's.
      const bool attended = c_.down_blocks[i] == BlockKind::AttnDown || c_.up_blocks[levels - 1 - i] == BlockKind::AttnUp ||
                            (c_.add_attention && i + 1 == levels);
      if (attended && c_.attention_head_dim && (*c_.attention_head_dim < 1 || v % *c_.attention_head_dim != 0))
        fail(ErrorCode::Config, "attention_head_dim " + std::to_string(*c_.attention_head_dim) +
                                    " does not divide the width " + std::to_string(v) + " of a block with attention");
    }
    if (c_.attn_norm_num_groups) check_groups(ch.back(), *c_.attn_norm_num_groups, "attn_norm_num_groups");
  }

  static void check_groups(int channels, int groups, const char* key) {
    if (groups < 1 || channels % groups != 0)
      fail(ErrorCode::Config, std::string(key) + " " + std::to_string(groups) + " does not divide channel count " +
                                  std::to_string(channels));
    if (channels / groups > 1024)
      fail(ErrorCode::Unsupported, std::string(key) + " " + std::to_string(groups) + " gives " +
                                       std::to_string(channels / groups) + " channels per group (at most 1024 supported)");
  }

  int new_value(int scale, int channels) {
    plan_.values.push_back({scale, channels});
    return static_cast<int>(plan_.values.size()) - 1;
  }

  std::vector<float> get(const std::string& name, const Shape& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    plan_.parameter_count += n;
    return w_.get(name, shape);
  }

  // One layer's weight as stored: float, or int8 with its per-output-channel scales.
  struct SourceWeight {
    std::string name;
    std::vector<int64_t> shape;
    bool int8 = false;
    std::vector<float> w;
    std::vector<int8_t> q;
    std::vector<float> scale;
  };

  SourceWeight read_weight(const std::string& layer, const Shape& shape) {
    SourceWeight s;
    s.name = layer;
    s.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    if (w_.get_int8(layer + ".weight", shape, &s.q, &s.scale)) {
      plan_.parameter_count += n;
      s.int8 = true;
    } else {
      s.w = get(layer + ".weight", shape);
    }
    layers_.push_back({layer, shape, {}});
    return s;
  }

  bool keep_float(const std::string& layer) const {
    for (const std::string& f : precision_.float_layers)
      if (f == layer) return true;
    return false;
  }

  // Packs the weights of one op: the sources concatenated along output channels, in the
  // precision the options give the group (float convs: in the algorithm float_conv_algorithm
  // picks for their shape).
  kernels::PackedConv pack(std::vector<SourceWeight>& sources, int in_c, int kernel, int stride = 1,
                           int pad = 0) {
    std::vector<std::string> group;
    for (const SourceWeight& s : sources) group.push_back(s.name);
    for (const SourceWeight& s : sources)
      for (LayerInfo& l : layers_)
        if (l.name == s.name) l.group = group;
    kernels::PackedConv p;
    int out_c = 0;
    for (const SourceWeight& s : sources) out_c += static_cast<int>(s.shape[0]);
    if (dry_) {  // no weights: describes the float plan a CPU load builds
      p.algorithm = kernels::float_conv_algorithm(kernel, stride, pad, in_c, out_c);
      return p;
    }
    using kernels::Precision;
    Precision precision = precision_.mode;
    for (const SourceWeight& s : sources) {
      if (keep_float(s.name)) precision = Precision::F32;
      if (precision == Precision::I8 && !precision_.quantize_float_weights && !s.int8) precision = Precision::F32;
    }
    const int64_t per = static_cast<int64_t>(in_c) * kernel * kernel;
    if (precision == Precision::I8) {
      std::vector<int8_t> q;
      std::vector<float> scale;
      for (SourceWeight& s : sources) {
        if (!s.int8) {
          s.q.resize(s.w.size());
          s.scale.resize(s.shape[0]);
          kernels::quantize_per_channel(s.w.data(), static_cast<int>(s.shape[0]), per, s.q.data(), s.scale.data());
        }
        q.insert(q.end(), s.q.begin(), s.q.end());
        scale.insert(scale.end(), s.scale.begin(), s.scale.end());
      }
      k_.pack_conv_int8(q.data(), scale.data(), out_c, in_c, kernel, &p);
      return p;
    }
    std::vector<float> w;
    for (const SourceWeight& s : sources) {
      if (s.int8)
        for (size_t i = 0; i < s.q.size(); ++i) w.push_back(static_cast<float>(s.q[i]) * s.scale[i / per]);
      else
        w.insert(w.end(), s.w.begin(), s.w.end());
    }
    if (precision == Precision::BF16)
      k_.pack_conv_bf16(w.data(), out_c, in_c, kernel, &p);
    else
      k_.pack_conv(w.data(), out_c, in_c, kernel, kernels::float_conv_algorithm(kernel, stride, pad, in_c, out_c), &p);
    return p;
  }

  kernels::PackedConv pack_one(const std::string& layer, const Shape& shape, int in_c, int kernel, int stride = 1,
                               int pad = 0) {
    std::vector<SourceWeight> sources;
    sources.push_back(read_weight(layer, shape));
    return pack(sources, in_c, kernel, stride, pad);
  }

  Linear linear(const std::string& name, int in, int out) {
    Linear l;
    l.sources = {name};
    l.in = in;
    l.out = out;
    l.weight = pack_one(name, {out, in}, in, 1);
    l.bias = get(name + ".bias", {out});
    return l;
  }

  int conv(int in, const std::string& name, int in_c, int out_c, int kernel, int stride, int pad, int residual = -1,
           float output_scale = 1.0f, int temb_offset = -1) {
    ConvOp op;
    op.sources = {name};
    op.in = in;
    op.weight = pack_one(name, {out_c, in_c, kernel, kernel}, in_c, kernel, stride, pad);
    op.bias = get(name + ".bias", {out_c});
    op.kernel = kernel;
    op.stride = stride;
    op.pad = pad;
    op.residual = residual;
    op.output_scale = output_scale;
    op.temb_offset = temb_offset;
    op.out = new_value(plan_.values[in].scale + (stride == 2 ? 1 : 0), out_c);
    plan_.ops.push_back(std::move(op));
    return std::get<ConvOp>(plan_.ops.back()).out;
  }

  int norm(int in, const std::string& name, int channels, int groups, bool silu, int scale_shift_offset) {
    NormOp op;
    op.source = name;
    op.in = in;
    op.gamma = get(name + ".weight", {channels});
    op.beta = get(name + ".bias", {channels});
    op.groups = groups;
    op.eps = static_cast<float>(c_.norm_eps);
    op.silu = silu;
    op.scale_shift_offset = scale_shift_offset;
    op.out = new_value(plan_.values[in].scale, channels);
    plan_.ops.push_back(std::move(op));
    return std::get<NormOp>(plan_.ops.back()).out;
  }

  int resample(int in, ResampleOp::Kind kind) {
    const int out = new_value(plan_.values[in].scale + (kind == ResampleOp::AvgPool2x2 ? 1 : -1), plan_.values[in].channels);
    plan_.ops.push_back(ResampleOp{kind, in, out});
    return out;
  }

  // ResnetBlock2D (fixture README 6.6 / 6.7).
  int resnet(int x, const std::string& prefix, int in_c, int out_c, Resize resize, double output_scale_factor) {
    const bool scale_shift = c_.resnet_time_scale_shift == TimeScaleShift::ScaleShift;
    int h = norm(x, prefix + ".norm1", in_c, c_.norm_num_groups, true, -1);
    int shortcut = x;
    if (resize != Resize::None) {
      const auto kind = resize == Resize::Up ? ResampleOp::UpsampleNearest2x : ResampleOp::AvgPool2x2;
      h = resample(h, kind);
      shortcut = resample(shortcut, kind);
    }
    const int proj_offset = temb_projection(prefix + ".time_emb_proj", scale_shift ? 2 * out_c : out_c);
    if (scale_shift) {
      h = conv(h, prefix + ".conv1", in_c, out_c, 3, 1, 1);
      h = norm(h, prefix + ".norm2", out_c, c_.norm_num_groups, true, proj_offset);
    } else {
      h = conv(h, prefix + ".conv1", in_c, out_c, 3, 1, 1, -1, 1.0f, proj_offset);
      h = norm(h, prefix + ".norm2", out_c, c_.norm_num_groups, true, -1);
    }
    if (in_c != out_c) shortcut = conv(shortcut, prefix + ".conv_shortcut", in_c, out_c, 1, 1, 0);
    return conv(h, prefix + ".conv2", out_c, out_c, 3, 1, 1, shortcut, static_cast<float>(1.0 / output_scale_factor));
  }

  // Attention block (fixture README 6.8); groups == 0 means no GroupNorm.
  int attention(int x, const std::string& prefix, int channels, int groups, double rescale_output_factor) {
    const int head_dim = c_.attention_head_dim ? *c_.attention_head_dim : channels;
    const int heads = channels / head_dim;
    int z = groups > 0 ? norm(x, prefix + ".group_norm", channels, groups, false, -1) : x;
    // Q, K and V projections as one 1x1 convolution with 3C outputs.
    std::vector<float> b;
    std::vector<SourceWeight> qkv_w;
    for (const char* part : {".to_q", ".to_k", ".to_v"}) {
      qkv_w.push_back(read_weight(prefix + part, {channels, channels}));
      std::vector<float> pb = get(prefix + part + ".bias", {channels});
      b.insert(b.end(), pb.begin(), pb.end());
    }
    ConvOp qkv;
    qkv.sources = {prefix + ".to_q", prefix + ".to_k", prefix + ".to_v"};
    qkv.in = z;
    qkv.weight = pack(qkv_w, channels, 1);
    qkv.bias = std::move(b);
    qkv.kernel = 1;
    qkv.pad = 0;
    qkv.out = new_value(plan_.values[x].scale, 3 * channels);
    const int qkv_value = qkv.out;
    plan_.ops.push_back(std::move(qkv));
    const int o = new_value(plan_.values[x].scale, channels);
    plan_.ops.push_back(AttentionOp{qkv_value, o, heads});
    ConvOp out;
    out.sources = {prefix + ".to_out.0"};
    out.in = o;
    out.weight = pack_one(prefix + ".to_out.0", {channels, channels}, channels, 1);
    out.bias = get(prefix + ".to_out.0.bias", {channels});
    out.kernel = 1;
    out.pad = 0;
    out.residual = x;
    out.output_scale = static_cast<float>(1.0 / rescale_output_factor);
    out.out = new_value(plan_.values[x].scale, channels);
    plan_.ops.push_back(std::move(out));
    return std::get<ConvOp>(plan_.ops.back()).out;
  }

  void time_embedding() {
    const int c0 = c_.block_out_channels[0];
    plan_.time_dim = c_.time_embedding_dim > 0 ? c_.time_embedding_dim : 4 * c0;
    if (c_.time_embedding_type == TimeEmbedding::Fourier) {
      plan_.proj_dim = 2 * c0;
      plan_.fourier_weight = get("time_proj.weight", {c0});
    } else {
      plan_.proj_dim = c0;
    }
    plan_.time_linear_1 = linear("time_embedding.linear_1", plan_.proj_dim, plan_.time_dim);
    plan_.time_linear_2 = linear("time_embedding.linear_2", plan_.time_dim, plan_.time_dim);
    switch (c_.class_embed_type) {
      case ClassEmbed::None:
      case ClassEmbed::Identity: break;
      case ClassEmbed::Embedding:
        if (c_.num_class_embeds < 1) fail(ErrorCode::Config, "num_class_embeds must be >= 1");
        plan_.class_table = get("class_embedding.weight", {c_.num_class_embeds, plan_.time_dim});
        break;
      case ClassEmbed::Timestep:
        plan_.class_linear_1 = linear("class_embedding.linear_1", plan_.proj_dim, plan_.time_dim);
        plan_.class_linear_2 = linear("class_embedding.linear_2", plan_.time_dim, plan_.time_dim);
        break;
    }
  }

  // Registers a ResNet's time_emb_proj; returns its first column in the concatenated table.
  int temb_projection(const std::string& name, int out) {
    const int offset = temb_proj_out_;
    temb_sources_.push_back(name);
    temb_w_.push_back(read_weight(name, {out, plan_.time_dim}));
    std::vector<float> b = get(name + ".bias", {out});
    temb_b_.insert(temb_b_.end(), b.begin(), b.end());
    temb_proj_out_ += out;
    return offset;
  }

  void finish_temb_proj() {
    Linear& l = plan_.temb_proj;
    l.sources = std::move(temb_sources_);
    l.in = plan_.time_dim;
    l.out = temb_proj_out_;
    l.weight = pack(temb_w_, l.in, 1);
    l.bias = std::move(temb_b_);
  }

  const UNetConfig& c_;
  WeightSource& w_;
  const kernels::KernelTable& k_;
  bool dry_;
  PrecisionOptions precision_;

 public:
  std::vector<LayerInfo> layers_;

 private:
  Plan plan_;
  std::vector<SourceWeight> temb_w_;
  std::vector<float> temb_b_;
  std::vector<std::string> temb_sources_;
  int temb_proj_out_ = 0;
};

}  // namespace

Plan build_plan(const UNetConfig& config, WeightSource& weights, const kernels::KernelTable& kernels, bool dry_run,
                const PrecisionOptions& precision) {
  return Builder(config, weights, kernels, dry_run, precision).build();
}

std::vector<LayerInfo> plan_layers(const UNetConfig& config) {
  WeightRecorder recorder;
  Builder builder(config, recorder, kernels::reference_kernels(), /*dry_run=*/true, {});
  builder.build();
  return builder.layers_;
}

}  // namespace fusediff::unet
