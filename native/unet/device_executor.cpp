#include "unet/device_executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "unet/time_embedding.h"
#include "unet/value_layout.h"

namespace fusediff::unet {

using backend::DeviceBuffer;

namespace {
constexpr int64_t kAlignFloats = 64;  // 256 bytes: every device pointer suits vector loads
int64_t align_up(int64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }
}  // namespace

struct DeviceExecutor::Linear {
  DeviceBuffer weight, bias;
  int in = 0, out = 0;
};

struct DeviceExecutor::OpWeights {
  DeviceBuffer weight, bias;   // ConvOp
  DeviceBuffer gamma, beta;    // NormOp
};

// Offsets in floats from the arena's start.
struct DeviceExecutor::Layout {
  int batch = 0, height = 0, width = 0;
  std::vector<int64_t> offset;  // per value
  int64_t sample = 0, output = 0, divisor = 0;
  int64_t proj = 0, hidden = 0, temb = 0, temb_silu = 0, temb_proj = 0, class_in = 0, class_out = 0;
  int64_t scratch = 0;
  int64_t total_floats = 0;
};

DeviceExecutor::Linear DeviceExecutor::upload_linear(const unet::Linear& l) {
  Linear d;
  d.in = l.in;
  d.out = l.out;
  if (l.out == 0) return d;
  backend::DeviceBackend& be = *backend_;
  d.weight = DeviceBuffer(be, be.packed_conv_bytes(l.out, l.in, 1));
  be.pack_conv(l.weight.data.f32(), l.out, l.in, 1, d.weight.get());
  if (!l.bias.empty()) {
    d.bias = DeviceBuffer(be, static_cast<int64_t>(l.bias.size()) * 4);
    be.upload(d.bias.get(), l.bias.data(), d.bias.bytes());
  }
  return d;
}

DeviceExecutor::DeviceExecutor(Plan plan, std::unique_ptr<backend::DeviceBackend> backend)
    : plan_(std::move(plan)), backend_(std::move(backend)) {
  if (!plan_.kernels || std::strcmp(plan_.kernels->name, "reference") != 0)
    fail(ErrorCode::Internal, "the device executor needs a plan with PyTorch-layout weights (reference kernel table)");
  // FUSEDIFF_CUDA_ATTENTION=fused selects the one-pass attention kernel (three passes by default
  // until it has been measured on a GPU).
  if (const char* a = std::getenv("FUSEDIFF_CUDA_ATTENTION"); a && std::strcmp(a, "fused") == 0) fused_attention_ = 1;
  backend::DeviceBackend& be = *backend_;
  auto upload_floats = [&](const std::vector<float>& v) {
    DeviceBuffer b;
    if (v.empty()) return b;
    b = DeviceBuffer(be, static_cast<int64_t>(v.size()) * 4);
    be.upload(b.get(), v.data(), b.bytes());
    return b;
  };
  time_1_ = std::make_unique<Linear>(upload_linear(plan_.time_linear_1));
  time_2_ = std::make_unique<Linear>(upload_linear(plan_.time_linear_2));
  class_1_ = std::make_unique<Linear>(upload_linear(plan_.class_linear_1));
  class_2_ = std::make_unique<Linear>(upload_linear(plan_.class_linear_2));
  temb_proj_ = std::make_unique<Linear>(upload_linear(plan_.temb_proj));
  op_weights_.resize(plan_.ops.size());
  for (size_t i = 0; i < plan_.ops.size(); ++i) {
    if (auto* conv = std::get_if<ConvOp>(&plan_.ops[i])) {
      const int in_c = plan_.values[conv->in].channels, out_c = plan_.values[conv->out].channels;
      OpWeights& w = op_weights_[i];
      w.weight = DeviceBuffer(be, be.packed_conv_bytes(out_c, in_c, conv->kernel));
      be.pack_conv(conv->weight.data.f32(), out_c, in_c, conv->kernel, w.weight.get());
      w.bias = upload_floats(conv->bias);
    } else if (auto* norm = std::get_if<NormOp>(&plan_.ops[i])) {
      op_weights_[i].gamma = upload_floats(norm->gamma);
      op_weights_[i].beta = upload_floats(norm->beta);
    }
  }
  be.synchronize();
  // The device holds the weights now: drop the host copies of the big ones.
  for (Op& op : plan_.ops)
    if (auto* conv = std::get_if<ConvOp>(&op)) conv->weight.data = AlignedBuffer();
  for (unet::Linear* l : {&plan_.time_linear_1, &plan_.time_linear_2, &plan_.class_linear_1, &plan_.class_linear_2,
                          &plan_.temb_proj})
    l->weight.data = AlignedBuffer();
}

DeviceExecutor::~DeviceExecutor() {
  // Device buffers go before the backend that owns their memory.
  arenas_.clear();
  op_weights_.clear();
  time_1_.reset(), time_2_.reset(), class_1_.reset(), class_2_.reset(), temb_proj_.reset();
}

DeviceExecutor::Layout DeviceExecutor::layout(int batch, int height, int width) const {
  Layout l;
  l.batch = batch, l.height = height, l.width = width;
  ValueLayout values = place_values(plan_, batch, height, width, kAlignFloats);
  l.offset = std::move(values.offset);
  int64_t cursor = align_up(values.floats);
  auto take = [&](int64_t floats) {
    const int64_t at = cursor;
    cursor += align_up(floats);
    return at;
  };
  const int64_t n = batch;
  const UNetConfig& c = plan_.config;
  l.sample = take(n * c.in_channels * height * width);
  l.output = take(n * c.out_channels * height * width);
  l.divisor = take(n);
  l.proj = take(n * plan_.proj_dim);
  l.hidden = take(n * plan_.time_dim);
  l.temb = take(n * plan_.time_dim);
  l.temb_silu = take(n * plan_.time_dim);
  l.temb_proj = take(n * plan_.temb_proj.out);
  l.class_in = take(n * plan_.time_dim);
  l.class_out = take(n * plan_.time_dim);
  int64_t scratch_bytes = 0;
  for (const Op& op : plan_.ops)
    if (const auto* attn = std::get_if<AttentionOp>(&op)) {
      const Value& v = plan_.values[attn->out];
      fdc_attention_params p{batch, (height >> v.scale) * (width >> v.scale), v.channels, attn->heads, fused_attention_};
      scratch_bytes = std::max(scratch_bytes, backend_->attention_scratch_bytes(p));
    }
  l.scratch = take((scratch_bytes + 3) / 4);
  l.total_floats = cursor;
  return l;
}

int64_t DeviceExecutor::arena_bytes(int batch, int height, int width) const {
  return layout(batch, height, width).total_floats * 4;
}

void DeviceExecutor::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  arenas_.clear();
}

void DeviceExecutor::run_linear(const Linear& l, int rows, const float* x, float* y) {
  fdc_conv2d_params p{};
  p.batch = 1;
  p.in_h = p.out_h = 1;
  p.in_w = p.out_w = rows;
  p.in_c = l.in;
  p.out_c = l.out;
  p.kernel = 1;
  p.stride = 1;
  fdc_epilogue e{};
  e.bias = l.bias.f32();
  e.output_scale = 1.0f;
  backend_->conv2d(p, x, l.weight.get(), e, y);
}

// temb = linear_2(silu(linear_1(proj(t)))) (+ class embedding), then every ResNet's
// time_emb_proj(silu(temb)) at once; the projections are computed on the host in float64
// (unet/time_embedding.h, as on the CPU) and uploaded.
void DeviceExecutor::time_embedding(const ForwardInput& in, const Layout& l, float* a) {
  const UNetConfig& c = plan_.config;
  backend::DeviceBackend& be = *backend_;
  const int n = l.batch, d = plan_.time_dim;
  const int64_t nd = static_cast<int64_t>(n) * d;
  std::vector<float> host(static_cast<size_t>(n) * std::max(plan_.proj_dim, d));
  auto project = [&](const std::vector<double>& t) {
    if (c.time_embedding_type == TimeEmbedding::Fourier)
      fourier_embedding(t, plan_.fourier_weight, host.data());
    else
      sinusoidal_embedding(t, plan_.proj_dim, c.flip_sin_to_cos, c.freq_shift, host.data());
    be.upload(a + l.proj, host.data(), static_cast<int64_t>(n) * plan_.proj_dim * 4);
  };
  auto mlp = [&](const Linear& l1, const Linear& l2, float* out) {
    run_linear(l1, n, a + l.proj, a + l.hidden);
    be.silu(a + l.hidden, nd, a + l.hidden);
    run_linear(l2, n, a + l.hidden, out);
  };
  project(in.timesteps);
  mlp(*time_1_, *time_2_, a + l.temb);
  switch (c.class_embed_type) {
    case ClassEmbed::None: break;
    case ClassEmbed::Embedding:
      for (int b = 0; b < n; ++b)
        std::memcpy(host.data() + static_cast<int64_t>(b) * d, plan_.class_table.data() + in.class_ids[b] * d,
                    static_cast<size_t>(d) * 4);
      be.upload(a + l.class_in, host.data(), nd * 4);
      be.add(a + l.class_in, nd, a + l.temb);
      break;
    case ClassEmbed::Timestep:
      project(in.class_values);
      mlp(*class_1_, *class_2_, a + l.class_out);
      be.add(a + l.class_out, nd, a + l.temb);
      break;
    case ClassEmbed::Identity:
      be.upload(a + l.class_in, in.class_vectors.data(), nd * 4);
      be.add(a + l.class_in, nd, a + l.temb);
      break;
  }
  be.silu(a + l.temb, nd, a + l.temb_silu);
  run_linear(*temb_proj_, n, a + l.temb_silu, a + l.temb_proj);
}

// One op of the plan: the device twin of the loop body of Executor::forward.
void DeviceExecutor::run_op(size_t index, const Layout& l, float* a, bool circular) {
  backend::DeviceBackend& be = *backend_;
  const Op& op = plan_.ops[index];
  const int batch = l.batch;
  auto value = [&](int v) { return a + l.offset[v]; };
  auto dims = [&](int v) {
    const Value& val = plan_.values[v];
    return std::make_tuple(l.height >> val.scale, l.width >> val.scale, val.channels);
  };
  const int64_t proj_stride = plan_.temb_proj.out;
  if (const auto* conv = std::get_if<ConvOp>(&op)) {
    auto [ih, iw, ic] = dims(conv->in);
    auto [oh, ow, oc] = dims(conv->out);
    fdc_conv2d_params p{};
    p.batch = batch;
    p.in_h = ih, p.in_w = iw, p.in_c = ic;
    p.out_h = oh, p.out_w = ow, p.out_c = oc;
    p.kernel = conv->kernel;
    p.stride = conv->stride;
    p.pad_top = p.pad_left = conv->pad;
    p.circular = circular && conv->pad > 0 ? 1 : 0;
    fdc_epilogue e{};
    e.bias = op_weights_[index].bias.f32();
    if (conv->temb_offset >= 0) {
      e.batch_bias = a + l.temb_proj + conv->temb_offset;
      e.batch_bias_stride = proj_stride;
    }
    if (conv->residual >= 0) e.residual = value(conv->residual);
    e.output_scale = conv->output_scale;
    be.conv2d(p, value(conv->in), op_weights_[index].weight.get(), e, value(conv->out));
  } else if (const auto* norm = std::get_if<NormOp>(&op)) {
    const Value& v = plan_.values[norm->in];
    fdc_group_norm_params p{};
    p.batch = batch;
    p.pixels = static_cast<int64_t>(l.height >> v.scale) * (l.width >> v.scale);
    p.channels = v.channels;
    p.groups = norm->groups;
    p.eps = norm->eps;
    p.gamma = op_weights_[index].gamma.f32();
    p.beta = op_weights_[index].beta.f32();
    if (norm->scale_shift_offset >= 0) {
      p.scale_shift = a + l.temb_proj + norm->scale_shift_offset;
      p.scale_shift_stride = proj_stride;
    }
    p.silu = norm->silu ? 1 : 0;
    be.group_norm(p, value(norm->in), value(norm->out));
  } else if (const auto* attn = std::get_if<AttentionOp>(&op)) {
    const Value& v = plan_.values[attn->out];
    fdc_attention_params p{batch, (l.height >> v.scale) * (l.width >> v.scale), v.channels, attn->heads, fused_attention_};
    be.attention(p, value(attn->in), value(attn->out), a + l.scratch);
  } else if (const auto* rs = std::get_if<ResampleOp>(&op)) {
    auto [h, w, ch] = dims(rs->in);
    if (rs->kind == ResampleOp::UpsampleNearest2x)
      be.upsample_nearest2x(value(rs->in), batch, h, w, ch, value(rs->out));
    else
      be.avg_pool2x2(value(rs->in), batch, h, w, ch, value(rs->out));
  } else if (const auto* cat = std::get_if<ConcatOp>(&op)) {
    auto [h, w, ca] = dims(cat->a);
    const int cb = plan_.values[cat->b].channels;
    be.concat_channels(value(cat->a), ca, value(cat->b), cb, static_cast<int64_t>(batch) * h * w, value(cat->out));
  }
}

TensorPtr DeviceExecutor::forward(const ForwardInput& in) {
  validate_forward(plan_, in);
  const auto& s = in.sample->shape();
  const int batch = static_cast<int>(s[0]), height = static_cast<int>(s[2]), width = static_cast<int>(s[3]);
  const UNetConfig& c = plan_.config;
  auto output = std::make_shared<Tensor>(std::vector<int64_t>{batch, c.out_channels, height, width});
  std::lock_guard<std::mutex> lock(mutex_);
  backend::DeviceBackend& be = *backend_;
  const Layout l = layout(batch, height, width);
  const ShapeKey key{batch, height, width};
  auto it = arenas_.find(key);
  if (it == arenas_.end()) it = arenas_.emplace(key, DeviceBuffer(be, l.total_floats * 4)).first;
  float* a = it->second.f32();

  be.upload(a + l.sample, in.sample->data(), in.sample->numel() * 4);
  time_embedding(in, l, a);
  be.nchw_to_nhwc(a + l.sample, batch, c.in_channels, height, width, c.center_input_sample, a + l.offset[plan_.input]);
  if (in.op_seconds) {
    in.op_seconds->assign(plan_.ops.size(), 0.0);
    be.synchronize();
  }
  for (size_t index = 0; index < plan_.ops.size(); ++index) {
    const auto started = std::chrono::steady_clock::now();
    run_op(index, l, a, in.circular_padding);
    if (in.op_seconds) {
      be.synchronize();
      (*in.op_seconds)[index] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    }
  }
  const float* divisor = nullptr;
  if (c.time_embedding_type == TimeEmbedding::Fourier) {
    std::vector<float> t(in.timesteps.begin(), in.timesteps.end());
    be.upload(a + l.divisor, t.data(), batch * 4);
    divisor = a + l.divisor;
  }
  be.nhwc_to_nchw(a + l.offset[plan_.output], batch, height, width, c.out_channels, divisor, a + l.output);
  be.download(output->data(), a + l.output, output->numel() * 4);
  output->set_source_device(be.cuda_device());
  return output;
}

}  // namespace fusediff::unet
