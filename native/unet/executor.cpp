#include "unet/executor.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/elementwise.h"
#include "unet/time_embedding.h"
#include "unet/value_layout.h"

namespace fusediff::unet {

namespace {
std::atomic<int64_t> g_memory_limit{0};

int64_t default_memory_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return int64_t{8} << 30;
  return static_cast<int64_t>(pages) * page / 2;
}

constexpr int64_t kAlignFloats = 16;  // 64 bytes
int64_t align_up(int64_t n) { return (n + kAlignFloats - 1) / kAlignFloats * kAlignFloats; }

// The resamplings a float conv can fold into its input read (Conv2dParams::input_resample):
// the next op is a float conv whose input is the resampled tensor, and nothing else reads
// that tensor. In diffusers' U-Nets: Upsample2D's nearest 2x before its conv, and a ResNet
// up / down block's norm1 -> upsample / 2x2 average -> conv1 (its shortcut path, resampled
// into conv2's residual, is not folded). Saves writing and reading the resampled tensor.
std::vector<bool> foldable_resamplings(const Plan& plan) {
  const std::vector<int> reads = read_counts(plan);
  std::vector<bool> fold(plan.ops.size(), false);
  for (size_t i = 0; i + 1 < plan.ops.size(); ++i) {
    const auto* rs = std::get_if<ResampleOp>(&plan.ops[i]);
    const auto* conv = std::get_if<ConvOp>(&plan.ops[i + 1]);
    fold[i] = rs && conv && conv->in == rs->out && reads[rs->out] == 1 && conv->weight.precision == kernels::Precision::F32;
  }
  return fold;
}

}  // namespace

int64_t activation_memory_limit() {
  int64_t v = g_memory_limit.load();
  return v > 0 ? v : default_memory_limit();
}
void set_activation_memory_limit(int64_t bytes) { g_memory_limit.store(bytes); }

// Where each value lives for one input shape, in floats from the arena's start.
struct Executor::Layout {
  int batch = 0, height = 0, width = 0;
  std::vector<int64_t> offset;
  int64_t activation_floats = 0;
  // Time-embedding scratch, after the activations.
  int64_t proj = 0, hidden = 0, temb = 0, temb_silu = 0, temb_proj = 0, class_hidden = 0, class_out = 0;
  int64_t kernel_scratch = 0;  // shared by the ops whose kernels need scratch (one op runs at a time)
  int64_t total_floats = 0;
};

struct Executor::Arena {
  Layout layout;
  AlignedBuffer memory;
  float* at(int64_t offset) { return memory.f32() + offset; }
  float* value(int v) { return at(layout.offset[v]); }
};

kernels::AttentionParams Executor::attention_params(const AttentionOp& op, int batch, int height, int width) const {
  const Value& v = plan_.values[op.out];
  kernels::AttentionParams p;
  p.batch = batch;
  p.tokens = (height >> v.scale) * (width >> v.scale);
  p.channels = v.channels;
  p.heads = op.heads;
  return p;
}

// Everything but the per-forward scale-shift pointer.
kernels::GroupNormParams Executor::norm_params(const NormOp& op, int batch, int height, int width) const {
  const Value& v = plan_.values[op.in];
  kernels::GroupNormParams p;
  p.batch = batch;
  p.pixels = static_cast<int64_t>(height >> v.scale) * (width >> v.scale);
  p.channels = v.channels;
  p.groups = op.groups;
  p.eps = op.eps;
  p.gamma = op.gamma.data();
  p.beta = op.beta.data();
  p.silu = op.silu;
  return p;
}

kernels::Conv2dParams Executor::conv_params(const ConvOp& conv, int batch, int height, int width) const {
  const Value& in = plan_.values[conv.in];
  const Value& out = plan_.values[conv.out];
  kernels::Conv2dParams p;
  p.batch = batch;
  p.in_h = height >> in.scale, p.in_w = width >> in.scale, p.in_c = in.channels;
  p.out_h = height >> out.scale, p.out_w = width >> out.scale, p.out_c = out.channels;
  p.kernel = conv.kernel;
  p.stride = conv.stride;
  p.pad_top = p.pad_left = conv.pad;
  return p;
}

// A linear layer over `rows` rows as a 1x1 convolution: in float over one image of `rows`
// pixels (one register tile); in int8 / bf16 over `rows` images of one pixel, so that the
// int8 kernel quantizes each row (each image's embedding) with its own scale.
kernels::Conv2dParams Executor::linear_params(const Linear& l, int rows) const {
  const bool per_row = l.weight.precision != kernels::Precision::F32;
  kernels::Conv2dParams p;
  p.batch = per_row ? rows : 1;
  p.in_h = p.out_h = 1;
  p.in_w = p.out_w = per_row ? 1 : rows;
  p.in_c = l.in;
  p.out_c = l.out;
  p.kernel = 1;
  p.pad_top = p.pad_left = 0;
  return p;
}

int64_t Executor::lowp_scratch_floats(const kernels::PackedConv& w, const kernels::Conv2dParams& p) const {
  if (w.precision == kernels::Precision::F32) return 0;
  return (plan_.kernels->lowp_conv_scratch_bytes(p, w.precision) + 3) / 4;
}

void Executor::run_conv(const kernels::Conv2dParams& p, const float* x, const kernels::PackedConv& w,
                        const kernels::ConvEpilogue& e, float* y, float* scratch, ThreadPool& pool) const {
  const kernels::KernelTable& k = *plan_.kernels;
  switch (w.precision) {
    case kernels::Precision::F32: k.conv2d(p, x, w, e, y, pool); break;
    case kernels::Precision::I8: k.conv2d_int8(p, x, w, e, y, scratch, pool); break;
    case kernels::Precision::BF16: k.conv2d_bf16(p, x, w, e, y, scratch, pool); break;
  }
}

Executor::Executor(Plan plan) : plan_(std::move(plan)), folded_(foldable_resamplings(plan_)) {}
Executor::~Executor() = default;

Executor::Layout Executor::layout(int batch, int height, int width) const {
  Layout l;
  l.batch = batch;
  l.height = height;
  l.width = width;
  ValueLayout values = place_values(plan_, batch, height, width, kAlignFloats, folded_);
  l.offset = std::move(values.offset);
  l.activation_floats = values.floats;
  int64_t cursor = l.activation_floats;
  auto take = [&](int64_t floats) {
    const int64_t at = cursor;
    cursor += align_up(floats);
    return at;
  };
  l.proj = take(static_cast<int64_t>(batch) * plan_.proj_dim);
  l.hidden = take(static_cast<int64_t>(batch) * plan_.time_dim);
  l.temb = take(static_cast<int64_t>(batch) * plan_.time_dim);
  l.temb_silu = take(static_cast<int64_t>(batch) * plan_.time_dim);
  l.temb_proj = take(static_cast<int64_t>(batch) * plan_.temb_proj.out);
  l.class_hidden = take(static_cast<int64_t>(batch) * plan_.time_dim);
  l.class_out = take(static_cast<int64_t>(batch) * plan_.time_dim);
  int64_t scratch_floats = 0;
  for (const Op& op : plan_.ops) {
    if (const auto* attn = std::get_if<AttentionOp>(&op))
      scratch_floats = std::max(scratch_floats, plan_.kernels->attention_scratch_floats(attention_params(*attn, batch, height, width)));
    if (const auto* norm = std::get_if<NormOp>(&op))
      scratch_floats = std::max(scratch_floats, plan_.kernels->group_norm_scratch_floats(norm_params(*norm, batch, height, width)));
  }
  // The int8 / bf16 convolutions' converted inputs (one op runs at a time; the time
  // embedding's linear layers run before the ops).
  for (const Op& op : plan_.ops)
    if (const auto* conv = std::get_if<ConvOp>(&op))
      scratch_floats = std::max(scratch_floats, lowp_scratch_floats(conv->weight, conv_params(*conv, batch, height, width)));
  for (const Linear* lin : {&plan_.time_linear_1, &plan_.time_linear_2, &plan_.class_linear_1, &plan_.class_linear_2, &plan_.temb_proj})
    scratch_floats = std::max(scratch_floats, lowp_scratch_floats(lin->weight, linear_params(*lin, batch)));
  l.kernel_scratch = take(scratch_floats);
  l.total_floats = cursor;
  return l;
}

int64_t Executor::arena_bytes(int batch, int height, int width) const {
  return layout(batch, height, width).total_floats * static_cast<int64_t>(sizeof(float));
}

std::unique_ptr<Executor::Arena> Executor::acquire(const ShapeKey& key) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_arenas_.find(key);
    if (it != free_arenas_.end() && !it->second.empty()) {
      auto arena = std::move(it->second.back());
      it->second.pop_back();
      return arena;
    }
  }
  auto [batch, height, width] = key;
  auto arena = std::make_unique<Arena>();
  arena->layout = layout(batch, height, width);
  const int64_t bytes = arena->layout.total_floats * static_cast<int64_t>(sizeof(float));
  const int64_t limit = activation_memory_limit();
  if (bytes > limit)
    fail(ErrorCode::Resource, "a forward at batch " + std::to_string(batch) + ", " + std::to_string(height) + "x" +
                                  std::to_string(width) + " needs " + std::to_string(bytes >> 20) +
                                  " MiB of activations, above the limit of " + std::to_string(limit >> 20) +
                                  " MiB; use a smaller batch or image, or raise the limit");
  arena->memory = AlignedBuffer(static_cast<size_t>(bytes));
  return arena;
}

void Executor::release(const ShapeKey& key, std::unique_ptr<Arena> arena) {
  std::lock_guard<std::mutex> lock(mutex_);
  free_arenas_[key].push_back(std::move(arena));
}

void Executor::trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  free_arenas_.clear();
}

void validate_forward(const Plan& plan_, const ForwardInput& in) {
  const UNetConfig& c = plan_.config;
  const auto& s = in.sample->shape();
  if (s.size() != 4)
    fail(ErrorCode::Shape, "sample must be 4-D [batch, channels, height, width], got " + shape_to_string(s));
  if (s[1] != c.in_channels)
    fail(ErrorCode::Shape, "sample has " + std::to_string(s[1]) + " channels, the model takes in_channels = " +
                               std::to_string(c.in_channels) + " (shape " + shape_to_string(s) + ")");
  if (s[0] < 1 || s[2] < 1 || s[3] < 1) fail(ErrorCode::Shape, "sample shape " + shape_to_string(s) + " is empty");
  const int64_t multiple = int64_t{1} << plan_.num_downsamples;
  if (s[2] % multiple || s[3] % multiple)
    fail(ErrorCode::Shape, "sample height and width must be multiples of " + std::to_string(multiple) + " (the model has " +
                               std::to_string(plan_.num_downsamples) + " downsamplers), got " + shape_to_string(s));
  if (s[0] > 65536 || s[2] > 16384 || s[3] > 16384)
    fail(ErrorCode::Resource, "sample shape " + shape_to_string(s) + " is beyond the supported size");
  const size_t batch = static_cast<size_t>(s[0]);
  if (in.timesteps.size() != batch)
    fail(ErrorCode::Shape, "got " + std::to_string(in.timesteps.size()) + " timesteps for a batch of " + std::to_string(batch));
  for (double t : in.timesteps) {
    if (!std::isfinite(t)) fail(ErrorCode::Argument, "timestep " + std::to_string(t) + " is not finite");
    if (c.time_embedding_type == TimeEmbedding::Fourier && !(t > 0))
      fail(ErrorCode::Argument, "a Fourier-embedding model takes timesteps that are noise levels > 0, got " + std::to_string(t));
  }
  switch (c.class_embed_type) {
    case ClassEmbed::None:
      if (!in.class_ids.empty() || !in.class_values.empty() || !in.class_vectors.empty())
        fail(ErrorCode::Argument, "class labels were given but the model is not class-conditional (num_class_embeds is null)");
      break;
    case ClassEmbed::Embedding:
      if (in.class_ids.size() != batch)
        fail(ErrorCode::Argument, "the model is class-conditional: give one class label per image (got " +
                                      std::to_string(in.class_ids.size()) + " for a batch of " + std::to_string(batch) + ")");
      for (int64_t id : in.class_ids)
        if (id < 0 || id >= c.num_class_embeds)
          fail(ErrorCode::Argument, "class label " + std::to_string(id) + " is outside [0, " +
                                        std::to_string(c.num_class_embeds) + ")");
      break;
    case ClassEmbed::Timestep:
      if (in.class_values.size() != batch)
        fail(ErrorCode::Argument, "class_embed_type 'timestep' needs one class value per image");
      break;
    case ClassEmbed::Identity:
      if (in.class_vectors.size() != batch * static_cast<size_t>(plan_.time_dim))
        fail(ErrorCode::Argument, "class_embed_type 'identity' needs a class embedding of " + std::to_string(plan_.time_dim) +
                                      " values per image");
      break;
  }
}

void Executor::run_linear(const Linear& l, int rows, const float* x, float* y, float* scratch, ThreadPool& pool) const {
  kernels::ConvEpilogue e;
  e.bias = l.bias.data();
  run_conv(linear_params(l, rows), x, l.weight, e, y, scratch, pool);
}

// temb = linear_2(silu(linear_1(proj(t)))) (+ class embedding); then every ResNet's
// time_emb_proj(silu(temb)) at once.
void Executor::time_embedding(const ForwardInput& in, Arena& a, ThreadPool& pool) {
  const UNetConfig& c = plan_.config;
  const Layout& l = a.layout;
  const int n = l.batch, d = plan_.time_dim;
  auto project = [&](const std::vector<double>& t, float* out) {
    if (c.time_embedding_type == TimeEmbedding::Fourier)
      fourier_embedding(t, plan_.fourier_weight, out);
    else
      sinusoidal_embedding(t, plan_.proj_dim, c.flip_sin_to_cos, c.freq_shift, out);
  };
  auto mlp = [&](const Linear& l1, const Linear& l2, float* out) {
    run_linear(l1, n, a.at(l.proj), a.at(l.hidden), a.at(l.kernel_scratch), pool);
    kernels::silu(a.at(l.hidden), static_cast<int64_t>(n) * d, a.at(l.hidden));
    run_linear(l2, n, a.at(l.hidden), out, a.at(l.kernel_scratch), pool);
  };
  project(in.timesteps, a.at(l.proj));
  mlp(plan_.time_linear_1, plan_.time_linear_2, a.at(l.temb));
  float* temb = a.at(l.temb);
  switch (c.class_embed_type) {
    case ClassEmbed::None: break;
    case ClassEmbed::Embedding:
      for (int b = 0; b < n; ++b)
        for (int j = 0; j < d; ++j) temb[b * d + j] += plan_.class_table[in.class_ids[b] * d + j];
      break;
    case ClassEmbed::Timestep:
      project(in.class_values, a.at(l.proj));
      mlp(plan_.class_linear_1, plan_.class_linear_2, a.at(l.class_out));
      for (int64_t i = 0; i < static_cast<int64_t>(n) * d; ++i) temb[i] += a.at(l.class_out)[i];
      break;
    case ClassEmbed::Identity:
      for (int64_t i = 0; i < static_cast<int64_t>(n) * d; ++i) temb[i] += in.class_vectors[i];
      break;
  }
  kernels::silu(temb, static_cast<int64_t>(n) * d, a.at(l.temb_silu));
  run_linear(plan_.temb_proj, n, a.at(l.temb_silu), a.at(l.temb_proj), a.at(l.kernel_scratch), pool);
}

TensorPtr Executor::forward(const ForwardInput& in) {
  validate_forward(plan_, in);
  const auto& s = in.sample->shape();
  const int batch = static_cast<int>(s[0]), height = static_cast<int>(s[2]), width = static_cast<int>(s[3]);
  const ShapeKey key{batch, height, width};
  std::unique_ptr<Arena> arena = acquire(key);  // checks the memory limit before anything is allocated
  struct Return {  // hands the arena back on every exit path
    Executor* self;
    const ShapeKey& key;
    std::unique_ptr<Arena>& arena;
    ~Return() { self->release(key, std::move(arena)); }
  } give_back{this, key, arena};
  Arena& a = *arena;
  auto output = std::make_shared<Tensor>(std::vector<int64_t>{batch, plan_.config.out_channels, height, width});
  const std::shared_ptr<ThreadPool> pool_owner = ThreadPool::global();  // kept for the whole forward
  ThreadPool& pool = *pool_owner;
  const kernels::KernelTable& k = *plan_.kernels;
  const int64_t proj_stride = plan_.temb_proj.out;

  time_embedding(in, a, pool);
  kernels::nchw_to_nhwc(in.sample->data(), batch, plan_.config.in_channels, height, width,
                        plan_.config.center_input_sample, a.value(plan_.input), pool);

  auto dims = [&](int v) {
    const Value& val = plan_.values[v];
    return std::make_tuple(height >> val.scale, width >> val.scale, val.channels);
  };
  if (in.op_seconds) in.op_seconds->assign(plan_.ops.size(), 0.0);
  for (size_t index = 0; index < plan_.ops.size(); ++index) {
    const Op& op = plan_.ops[index];
    if (folded_[index]) continue;  // the next conv resamples this op's input as it reads it
    const auto started = std::chrono::steady_clock::now();
    if (const auto* conv = std::get_if<ConvOp>(&op)) {
      kernels::Conv2dParams p = conv_params(*conv, batch, height, width);
      p.circular = in.circular_padding && conv->pad > 0;
      kernels::ConvEpilogue e;
      e.bias = conv->bias.data();
      if (conv->temb_offset >= 0) {
        e.batch_bias = a.at(a.layout.temb_proj) + conv->temb_offset;
        e.batch_bias_stride = proj_stride;
      }
      if (conv->residual >= 0) e.residual = a.value(conv->residual);
      e.output_scale = conv->output_scale;
      const float* x = a.value(conv->in);
      if (index > 0 && folded_[index - 1]) {
        const ResampleOp& rs = std::get<ResampleOp>(plan_.ops[index - 1]);
        p.input_resample = rs.kind == ResampleOp::UpsampleNearest2x ? kernels::Conv2dParams::InputResample::Upsample2x
                                                                    : kernels::Conv2dParams::InputResample::AvgPool2x;
        x = a.value(rs.in);
      }
      run_conv(p, x, conv->weight, e, a.value(conv->out), a.at(a.layout.kernel_scratch), pool);
    } else if (const auto* norm = std::get_if<NormOp>(&op)) {
      kernels::GroupNormParams p = norm_params(*norm, batch, height, width);
      if (norm->scale_shift_offset >= 0) {
        p.scale_shift = a.at(a.layout.temb_proj) + norm->scale_shift_offset;
        p.scale_shift_stride = proj_stride;
      }
      k.group_norm(p, a.value(norm->in), a.value(norm->out), a.at(a.layout.kernel_scratch), pool);
    } else if (const auto* attn = std::get_if<AttentionOp>(&op)) {
      k.attention(attention_params(*attn, batch, height, width), a.value(attn->in), a.value(attn->out),
                  a.at(a.layout.kernel_scratch), pool);
    } else if (const auto* rs = std::get_if<ResampleOp>(&op)) {
      auto [h, w, ch] = dims(rs->in);
      if (rs->kind == ResampleOp::UpsampleNearest2x)
        kernels::upsample_nearest2x(a.value(rs->in), batch, h, w, ch, a.value(rs->out), pool);
      else
        kernels::avg_pool2x2(a.value(rs->in), batch, h, w, ch, a.value(rs->out), pool);
    } else if (const auto* cat = std::get_if<ConcatOp>(&op)) {
      auto [h, w, ca] = dims(cat->a);
      const int cb = plan_.values[cat->b].channels;
      kernels::concat_channels(a.value(cat->a), ca, a.value(cat->b), cb, static_cast<int64_t>(batch) * h * w,
                               a.value(cat->out), pool);
    }
    if (in.op_seconds)
      (*in.op_seconds)[index] = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }

  std::vector<float> divisor;
  if (plan_.config.time_embedding_type == TimeEmbedding::Fourier)
    for (double t : in.timesteps) divisor.push_back(static_cast<float>(t));
  kernels::nhwc_to_nchw(a.value(plan_.output), batch, height, width, plan_.config.out_channels,
                        divisor.empty() ? nullptr : divisor.data(), output->data(), pool);
  return output;
}

}  // namespace fusediff::unet
