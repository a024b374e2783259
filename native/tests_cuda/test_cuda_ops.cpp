// GPU checks of the CUDA backend (npm run test:cuda; needs a CUDA device): every op of
// libfusediff_cuda.so against the CPU reference on the same inputs, in every math mode, and
// the whole U-Net (device executor vs CPU executor). Prints the max abs error of every check
// ("RESULT <name> <error> <tolerance>", collected into bench/results-cuda.md) and fails when
// one is above its tolerance. Philox noise and the memory-bound ops must be bit-identical.
//
// Tolerances, relative to the output scale: fp32 1e-5 (only summation order differs); TF32
// (10-bit mantissa inputs, float accumulation) 5e-3 per conv, 2e-2 through a whole UNet; BF16
// (7-bit) 3e-2 per conv, 1.2e-1 through a UNet.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda_backend.h"
#include "backend/cuda_library.h"
#include "conv_layout.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
#include "kernels/reference/reference.h"
#include "kernels/step.h"
#include "tests/check.h"
#include "tests/random_weights.h"
#include "unet/device_executor.h"
#include "unet/executor.h"

using namespace fusediff;
using backend::DeviceBackend;
using backend::DeviceBuffer;

namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

double relative_tolerance(int math) { return math == FDC_MATH_FP32 ? 1e-5 : math == FDC_MATH_TF32 ? 5e-3 : 3e-2; }

// Reports and checks one comparison: error <= tolerance.
void result(const std::string& name, double error, double tolerance) {
  std::printf("RESULT %s %.3e %.3e\n", name.c_str(), error, tolerance);
  std::fflush(stdout);
  CHECK(error <= tolerance);
}

struct Device {
  std::unique_ptr<DeviceBackend> be;
  explicit Device(int math) : be(backend::make_cuda_backend(0, math)) {}
  DeviceBuffer put(const std::vector<float>& v) {
    DeviceBuffer b(*be, static_cast<int64_t>(v.size()) * 4);
    be->upload(b.get(), v.data(), b.bytes());
    return b;
  }
  DeviceBuffer zeros(size_t n) { return DeviceBuffer(*be, static_cast<int64_t>(n) * 4); }
  std::vector<float> get(const DeviceBuffer& b, size_t n) {
    std::vector<float> v(n);
    be->download(v.data(), b.get(), static_cast<int64_t>(n) * 4);
    return v;
  }
};

ThreadPool& pool() {
  static std::shared_ptr<ThreadPool> p = ThreadPool::global();
  return *p;
}

}  // namespace

TEST_CASE("cuda conv2d: every math mode against the reference (tiles, tails, strides, circular, epilogue)") {
  struct Case {
    int batch, h, w, in_c, out_c, kernel, stride, pad;
    bool circular;
  };
  const Case cases[] = {{1, 5, 7, 3, 5, 3, 1, 1, false},      {2, 16, 16, 32, 64, 3, 1, 1, false},
                        {3, 17, 9, 19, 70, 3, 2, 1, false},   {2, 16, 16, 128, 256, 3, 1, 1, false},
                        {4, 32, 32, 3, 128, 3, 1, 1, true},   {2, 8, 8, 256, 128, 1, 1, 0, false},
                        {1, 16, 16, 64, 64, 3, 2, 0, false},  {64, 8, 8, 256, 256, 3, 1, 1, false}};
  for (int math : {FDC_MATH_FP32, FDC_MATH_TF32, FDC_MATH_BF16}) {
    Device d(math);
    uint32_t seed = 100;
    for (const Case& c : cases) {
      fdc_conv2d_params p{};
      p.batch = c.batch, p.in_h = c.h, p.in_w = c.w, p.in_c = c.in_c, p.out_c = c.out_c;
      p.kernel = c.kernel, p.stride = c.stride, p.pad_top = p.pad_left = c.pad, p.circular = c.circular;
      p.out_h = (c.h + 2 * c.pad - c.kernel) / c.stride + 1;
      p.out_w = (c.w + 2 * c.pad - c.kernel) / c.stride + 1;
      const size_t out_n = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
      auto x = random_vector(static_cast<size_t>(c.batch) * c.h * c.w * c.in_c, seed++);
      auto w = random_vector(static_cast<size_t>(c.out_c) * c.in_c * c.kernel * c.kernel, seed++,
                             std::sqrt(3.0f / (c.in_c * c.kernel * c.kernel)));
      auto bias = random_vector(c.out_c, seed++);
      auto bb = random_vector(static_cast<size_t>(c.batch) * (2 * c.out_c), seed++);
      auto res = random_vector(out_n, seed++);
      kernels::Conv2dParams rp;
      rp.batch = p.batch, rp.in_h = p.in_h, rp.in_w = p.in_w, rp.in_c = p.in_c;
      rp.out_h = p.out_h, rp.out_w = p.out_w, rp.out_c = p.out_c;
      rp.kernel = p.kernel, rp.stride = p.stride, rp.pad_top = rp.pad_left = c.pad, rp.circular = c.circular;
      kernels::ConvEpilogue re;
      re.bias = bias.data(), re.batch_bias = bb.data() + 3, re.batch_bias_stride = 2 * c.out_c;
      re.residual = res.data(), re.output_scale = 0.7f;
      kernels::PackedConv pw;
      kernels::reference::pack_conv(w.data(), c.out_c, c.in_c, c.kernel, kernels::ConvAlgorithm::Direct, &pw);
      std::vector<float> want(out_n);
      kernels::reference::conv2d(rp, x.data(), pw, re, want.data(), pool());

      DeviceBuffer dx = d.put(x), dbias = d.put(bias), dbb = d.put(bb), dres = d.put(res), dy = d.zeros(out_n);
      DeviceBuffer dw(*d.be, d.be->packed_conv_bytes(c.out_c, c.in_c, c.kernel));
      d.be->pack_conv(w.data(), c.out_c, c.in_c, c.kernel, dw.get());
      fdc_epilogue e{dbias.f32(), dbb.f32() + 3, 2 * c.out_c, dres.f32(), 0.7f};
      d.be->conv2d(p, dx.f32(), dw.get(), e, dy.f32());
      auto got = d.get(dy, out_n);
      const std::string name = std::string("conv2d.") + backend::cuda_math_name(math) + "." + std::to_string(c.batch) + "x" +
                               std::to_string(c.h) + "x" + std::to_string(c.w) + "x" + std::to_string(c.in_c) + "->" +
                               std::to_string(c.out_c) + ".k" + std::to_string(c.kernel) + "s" + std::to_string(c.stride) +
                               (c.circular ? ".circular" : "");
      result(name, max_abs_diff(got, want), relative_tolerance(math) * std::max(1.0, max_abs(want)));
    }
  }
}

TEST_CASE("cuda group_norm: plain, scale-shift, SiLU") {
  Device d(FDC_MATH_FP32);
  struct Case {
    int batch;
    int64_t pixels;
    int channels, groups;
    bool scale_shift, silu;
  };
  const Case cases[] = {{2, 64, 32, 8, false, false}, {3, 256, 128, 32, true, true}, {2, 4096, 192, 32, false, true},
                        {1, 7, 12, 3, true, false}};
  uint32_t seed = 200;
  for (const Case& c : cases) {
    const size_t n = static_cast<size_t>(c.batch) * c.pixels * c.channels;
    auto x = random_vector(n, seed++, 3.0f);
    for (size_t i = 0; i < n; ++i) x[i] += 0.5f;  // a non-zero mean
    auto gamma = random_vector(c.channels, seed++), beta = random_vector(c.channels, seed++);
    auto ss = random_vector(static_cast<size_t>(c.batch) * 3 * c.channels, seed++);
    kernels::GroupNormParams g;
    g.batch = c.batch, g.pixels = c.pixels, g.channels = c.channels, g.groups = c.groups, g.eps = 1e-6f;
    g.gamma = gamma.data(), g.beta = beta.data(), g.silu = c.silu;
    if (c.scale_shift) g.scale_shift = ss.data() + 1, g.scale_shift_stride = 3 * c.channels;
    std::vector<float> want(n);
    kernels::reference::group_norm(g, x.data(), want.data(), nullptr, pool());
    DeviceBuffer dx = d.put(x), dg = d.put(gamma), db = d.put(beta), dss = d.put(ss), dy = d.zeros(n);
    fdc_group_norm_params p{c.batch, c.pixels, c.channels, c.groups, 1e-6f, dg.f32(), db.f32(),
                            c.scale_shift ? dss.f32() + 1 : nullptr, 3 * c.channels, c.silu ? 1 : 0};
    d.be->group_norm(p, dx.f32(), dy.f32());
    result("group_norm." + std::to_string(c.batch) + "x" + std::to_string(c.pixels) + "x" + std::to_string(c.channels) +
               "/g" + std::to_string(c.groups) + (c.scale_shift ? ".ss" : "") + (c.silu ? ".silu" : ""),
           max_abs_diff(d.get(dy, n), want), 1e-5 * std::max(1.0, max_abs(want)));
  }
}

TEST_CASE("cuda attention: heads, token counts off the tile size") {
  Device d(FDC_MATH_FP32);
  struct Case {
    int batch, tokens, channels, heads;
  };
  const Case cases[] = {{2, 64, 32, 1}, {3, 100, 64, 4}, {1, 256, 256, 1}, {2, 1024, 192, 3}, {16, 64, 512, 8}};
  uint32_t seed = 300;
  for (const Case& c : cases) {
    const size_t n_in = static_cast<size_t>(c.batch) * c.tokens * 3 * c.channels, n_out = n_in / 3;
    auto qkv = random_vector(n_in, seed++, 2.0f);
    kernels::AttentionParams a{c.batch, c.tokens, c.channels, c.heads};
    std::vector<float> want(n_out);
    kernels::reference::attention(a, qkv.data(), want.data(), nullptr, pool());
    for (int fused : {0, 1}) {
      fdc_attention_params p{c.batch, c.tokens, c.channels, c.heads, fused};
      DeviceBuffer dq = d.put(qkv), dy = d.zeros(n_out), scratch(*d.be, d.be->attention_scratch_bytes(p));
      d.be->attention(p, dq.f32(), dy.f32(), scratch.get());
      result(std::string("attention.") + (fused ? "fused." : "3pass.") + std::to_string(c.batch) + "x" +
                 std::to_string(c.tokens) + "x" + std::to_string(c.channels) + "/h" + std::to_string(c.heads),
             max_abs_diff(d.get(dy, n_out), want), 1e-5 * std::max(1.0, max_abs(want)));
    }
  }
}

TEST_CASE("cuda memory-bound ops are bit-identical to the CPU") {
  Device d(FDC_MATH_FP32);
  const int b = 3, c = 5, h = 6, w = 8;
  const size_t n = static_cast<size_t>(b) * c * h * w;
  auto x = random_vector(n, 400, 4.0f), x2 = random_vector(n, 401);
  DeviceBuffer dx = d.put(x), dx2 = d.put(x2), dy = d.zeros(4 * n);
  std::vector<float> want(4 * n);
  auto check = [&](const char* name, size_t count) { result(std::string("exact.") + name, max_abs_diff(d.get(dy, count), std::vector<float>(want.begin(), want.begin() + count)), 0.0); };
  kernels::nchw_to_nhwc(x.data(), b, c, h, w, true, want.data(), pool());
  d.be->nchw_to_nhwc(dx.f32(), b, c, h, w, true, dy.f32());
  check("nchw_to_nhwc", n);
  std::vector<float> divisor{2.0f, 0.5f, 3.0f};
  DeviceBuffer ddiv = d.put(divisor);
  kernels::nhwc_to_nchw(x.data(), b, h, w, c, divisor.data(), want.data(), pool());
  d.be->nhwc_to_nchw(dx.f32(), b, h, w, c, ddiv.f32(), dy.f32());
  check("nhwc_to_nchw", n);
  kernels::silu(x.data(), static_cast<int64_t>(n), want.data());
  d.be->silu(dx.f32(), static_cast<int64_t>(n), dy.f32());
  result("silu", max_abs_diff(d.get(dy, n), std::vector<float>(want.begin(), want.begin() + n)), 1e-6);  // expf vs std::exp
  kernels::upsample_nearest2x(x.data(), b, h, w, c, want.data(), pool());
  d.be->upsample_nearest2x(dx.f32(), b, h, w, c, dy.f32());
  check("upsample_nearest2x", 4 * n);
  kernels::avg_pool2x2(x.data(), b, h, w, c, want.data(), pool());
  d.be->avg_pool2x2(dx.f32(), b, h, w, c, dy.f32());
  check("avg_pool2x2", n / 4);
  kernels::concat_channels(x.data(), c, x2.data(), c, static_cast<int64_t>(b) * h * w, want.data(), pool());
  d.be->concat_channels(dx.f32(), c, dx2.f32(), c, static_cast<int64_t>(b) * h * w, dy.f32());
  check("concat_channels", 2 * n);
  for (size_t i = 0; i < n; ++i) want[i] = x2[i] + x[i];
  d.be->upload(dy.get(), x2.data(), static_cast<int64_t>(n) * 4);
  d.be->add(dx.f32(), static_cast<int64_t>(n), dy.f32());
  check("add", n);
}

TEST_CASE("cuda philox: noise bit-identical to the CPU's for the same seeds") {
  Device d(FDC_MATH_FP32);
  const int64_t batch = 4, per_item = 3 * 64 * 64 + 3;  // not a multiple of 4
  const std::vector<uint64_t> seeds{0, 42, (uint64_t{1} << 53) - 1, 123456789};
  for (uint64_t stream : {uint64_t{0}, uint64_t{7}, uint64_t{1} << 40}) {
    std::vector<float> want(static_cast<size_t>(batch * per_item));
    kernels::reference::philox_normal(want.data(), batch, per_item, seeds.data(), stream);
    DeviceBuffer dy = d.zeros(want.size());
    d.be->philox_normal(dy.f32(), batch, per_item, seeds.data(), stream);
    auto got = d.get(dy, want.size());
    int64_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i];
    std::printf("RESULT philox.stream%llu.values_differing %lld 0\n", static_cast<unsigned long long>(stream),
                static_cast<long long>(differ));
    result("philox.stream" + std::to_string(stream), max_abs_diff(got, want), 0.0);
  }
}

TEST_CASE("cuda affine_step: every mode against the reference (float64 per element)") {
  Device d(FDC_MATH_FP32);
  const int64_t B = 3, C = 3, P = 37;
  const size_t n = static_cast<size_t>(B * C * P);
  auto x = random_vector(n, 500), y = random_vector(n, 501), z = random_vector(n, 502);
  auto m2 = random_vector(2 * n, 503);       // 2C channels (learned variance) or 2B images (guided)
  for (float& v : m2) v = std::fabs(v) + 0.01f;  // a positive variance half for sqrt
  std::vector<double> ax{0.9, 1.1, 0.0}, am{-0.3, 0.2, 0.5}, az{0.0, 0.1, 0.0}, bx{0.5, 0.6, 0.7}, bm{0.1, 0.0, -0.2},
      b0{0.3, 0.4, 0.5}, bz{0.2, 0.0, 0.3}, by{0.0, 0.25, 0.0}, e0{-1.0, -2.0, -0.5}, e1{0.5, 0.25, 1.0};
  const std::vector<uint64_t> seeds{9, 10, 11};
  DeviceBuffer dx = d.put(x), dy = d.put(y), dz = d.put(z), dm = d.put(m2), dout = d.zeros(n), dx0 = d.zeros(n);
  struct Mode {
    const char* name;
    int clamp, noise_scale, m_channels, guided;
    bool seeded;
  };
  const Mode modes[] = {{"plain", FDC_CLAMP_NONE, FDC_NOISE_CONSTANT, 3, 0, false},
                        {"clamp", FDC_CLAMP_RANGE, FDC_NOISE_CONSTANT, 3, 0, false},
                        {"philox", FDC_CLAMP_NONE, FDC_NOISE_CONSTANT, 3, 0, true},
                        {"sqrtv", FDC_CLAMP_NONE, FDC_NOISE_SQRTV, 6, 0, true},
                        {"expv", FDC_CLAMP_RANGE, FDC_NOISE_EXPV, 6, 0, false},
                        {"guided", FDC_CLAMP_NONE, FDC_NOISE_CONSTANT, 3, 1, true}};
  for (const Mode& mode : modes) {
    fdc_affine_step_params p{};
    p.batch = B, p.channels = C, p.pixels = P;
    p.ax = ax.data(), p.am = am.data(), p.az = az.data(), p.bx = bx.data(), p.bm = bm.data(), p.b0 = b0.data();
    p.bz = bz.data(), p.by = by.data(), p.e0 = e0.data(), p.e1 = e1.data();
    p.clamp = mode.clamp, p.clamp_lo = -0.5, p.clamp_hi = 0.6, p.noise_scale = mode.noise_scale;
    p.m_channels = mode.m_channels, p.guided = mode.guided, p.guidance_scale = 3.5;
    p.stream = 5;
    // The reference on host pointers.
    kernels::AffineStepParams a;
    a.batch = B, a.channels = C, a.pixels = P;
    a.ax = p.ax, a.am = p.am, a.az = p.az, a.bx = p.bx, a.bm = p.bm, a.b0 = p.b0, a.bz = p.bz, a.by = p.by, a.e0 = p.e0, a.e1 = p.e1;
    a.clamp = mode.clamp == FDC_CLAMP_RANGE ? kernels::ClampMode::Range : kernels::ClampMode::None;
    a.clamp_lo = -0.5, a.clamp_hi = 0.6;
    a.noise_scale = mode.noise_scale == FDC_NOISE_SQRTV  ? kernels::NoiseScaleMode::SqrtV
                    : mode.noise_scale == FDC_NOISE_EXPV ? kernels::NoiseScaleMode::ExpV
                                                         : kernels::NoiseScaleMode::Constant;
    kernels::ModelOutputView mv{m2.data(), mode.m_channels, mode.guided != 0, 3.5};
    kernels::NoiseSource zs;
    if (mode.seeded) zs.seeds = seeds.data(), zs.stream = 5;
    else zs.tensor = z.data();
    std::vector<float> want(n), want_x0(n);
    kernels::reference::affine_step(a, x.data(), mv, zs, y.data(), want.data(), want_x0.data());
    p.m = dm.f32(), p.y = dy.f32();
    if (mode.seeded) p.seeds = seeds.data();
    else p.z = dz.f32();
    d.be->affine_step(p, dx.f32(), dout.f32(), dx0.f32());
    // float64 arithmetic in the same order: equal, up to a last-bit difference of exp/sqrt.
    result(std::string("affine_step.") + mode.name, max_abs_diff(d.get(dout, n), want), 1e-6);
    result(std::string("affine_step.") + mode.name + ".x0", max_abs_diff(d.get(dx0, n), want_x0), 1e-6);
  }
}

TEST_CASE("cuda langevin_step: per-image and batch-mean step sizes against the reference") {
  Device d(FDC_MATH_FP32);
  const int64_t B = 4, C = 3, P = 64 * 64, n = B * C * P;
  auto x = random_vector(static_cast<size_t>(n), 700), m = random_vector(static_cast<size_t>(2 * n), 701),
       z = random_vector(static_cast<size_t>(n), 702);
  std::vector<double> k{-1.5, 0.5, 2.0, -0.25}, alpha{0.9, 1.0, 0.99, 0.5};
  const std::vector<uint64_t> seeds{1, 2, 3, 4};
  DeviceBuffer dx = d.put(x), dm = d.put(m), dz = d.put(z), dout = d.zeros(n), dmean = d.zeros(n);
  for (int mode = 0; mode < 3; ++mode) {
    kernels::LangevinParams l;
    l.batch = B, l.channels = C, l.pixels = P, l.score_scale = k.data(), l.snr = 0.16;
    l.alpha = mode == 1 ? alpha.data() : nullptr;
    l.batch_mean_norms = mode == 2;
    kernels::ModelOutputView view{m.data(), C, mode == 2, 2.0};
    kernels::NoiseSource noise;
    if (mode == 0) noise.tensor = z.data();
    else noise.seeds = seeds.data(), noise.stream = 9;
    std::vector<float> want(n), want_mean(n);
    std::vector<double> want_eps(B), got_eps(B);
    kernels::reference::langevin_step(l, x.data(), view, noise, want.data(), want_mean.data(), want_eps.data());
    fdc_langevin_params p{};
    p.batch = B, p.channels = C, p.pixels = P, p.score_scale = k.data(), p.alpha = l.alpha, p.snr = 0.16;
    p.batch_mean_norms = mode == 2, p.m = dm.f32(), p.guided = mode == 2, p.guidance_scale = 2.0;
    if (mode == 0) p.z = dz.f32();
    else p.seeds = seeds.data(), p.stream = 9;
    d.be->langevin_step(p, dx.f32(), dout.f32(), dmean.f32(), got_eps.data());
    double eps_err = 0;
    for (int64_t b = 0; b < B; ++b) eps_err = std::max(eps_err, std::fabs(got_eps[b] - want_eps[b]) / std::max(1e-300, want_eps[b]));
    const std::string name = std::string("langevin.") + (mode == 0 ? "tensor" : mode == 1 ? "philox.alpha" : "batchmean.guided");
    result(name + ".step_size_rel", eps_err, 1e-12);
    result(name, max_abs_diff(d.get(dout, n), want), 1e-6);
    result(name + ".mean", max_abs_diff(d.get(dmean, n), want_mean), 1e-6);
  }
}

namespace {

using RandomWeights = testing::RandomWeights;

}  // namespace

TEST_CASE("cuda UNet: the device executor against the CPU executor, every math mode") {
  using unet::BlockKind;
  unet::UNetConfig c;
  c.down_blocks = {BlockKind::ResnetDownsample, BlockKind::AttnDown, BlockKind::Down};
  c.up_blocks = {BlockKind::Up, BlockKind::AttnUp, BlockKind::ResnetUpsample};
  c.downsample_type = c.upsample_type = unet::Resample::Resnet;
  c.block_out_channels = {64, 128, 128};
  c.layers_per_block = 2;
  c.attention_head_dim = 32;
  c.resnet_time_scale_shift = unet::TimeScaleShift::ScaleShift;
  c.attn_norm_num_groups = 32;
  c.class_embed_type = unet::ClassEmbed::Embedding;
  c.num_class_embeds = 10;
  // The CPU side uses this machine's fast kernel table (each is tested against the reference).
  RandomWeights w1(77);
  unet::Executor cpu(unet::build_plan(c, w1, kernels::select_kernels()));
  Tensor sample({4, 3, 32, 32});
  auto x = random_vector(static_cast<size_t>(sample.numel()), 78);
  std::copy(x.begin(), x.end(), sample.data());
  for (int variant = 0; variant < 4; ++variant) {  // fp32, tf32, bf16 with three-pass attention; tf32 fused
    const int math = variant == 3 ? FDC_MATH_TF32 : variant;
    if (variant == 3) setenv("FUSEDIFF_CUDA_ATTENTION", "fused", 1);
    RandomWeights w2(77);
    unet::DeviceExecutor gpu(unet::build_plan(c, w2, kernels::reference_kernels()), backend::make_cuda_backend(0, math));
    unsetenv("FUSEDIFF_CUDA_ATTENTION");
    for (bool circular : {false, true}) {
      unet::ForwardInput in;
      in.sample = &sample;
      in.timesteps = {1, 250, 500.5, 999};
      in.class_ids = {0, 3, 9, 3};
      in.circular_padding = circular;
      TensorPtr a = cpu.forward(in), b = gpu.forward(in);
      std::vector<float> va(a->data(), a->data() + a->numel()), vb(b->data(), b->data() + b->numel());
      result(std::string("unet.") + backend::cuda_math_name(math) + (variant == 3 ? ".fused_attention" : "") +
                 (circular ? ".circular" : ""),
             max_abs_diff(va, vb),
             4 * relative_tolerance(math) * std::max(1.0, max_abs(va)));
    }
  }
}

TEST_CASE("cuda conv2d_int8: equals its host twin (same quantization, exact int32 sums)") {
  const auto& api = backend::CudaLibrary::shared()->api();
  Device d(FDC_MATH_FP32);
  struct Case {
    int batch, h, w, in_c, out_c, kernel, stride, pad;
  };
  const Case cases[] = {{2, 8, 6, 7, 9, 3, 1, 1}, {3, 16, 16, 64, 128, 3, 2, 1}, {4, 8, 8, 256, 64, 1, 1, 0}};
  uint32_t seed = 600;
  for (const Case& c : cases) {
    fdc_conv2d_params p{};
    p.batch = c.batch, p.in_h = c.h, p.in_w = c.w, p.in_c = c.in_c, p.out_c = c.out_c;
    p.kernel = c.kernel, p.stride = c.stride, p.pad_top = p.pad_left = c.pad;
    p.out_h = (c.h + 2 * c.pad - c.kernel) / c.stride + 1;
    p.out_w = (c.w + 2 * c.pad - c.kernel) / c.stride + 1;
    const size_t out_n = static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c;
    auto x = random_vector(static_cast<size_t>(c.batch) * c.h * c.w * c.in_c, seed++);
    auto w = random_vector(static_cast<size_t>(c.out_c) * c.in_c * c.kernel * c.kernel, seed++, 0.1f);
    auto bias = random_vector(c.out_c, seed++);
    std::vector<unsigned char> packed(static_cast<size_t>(cuda::packed_conv_int8_bytes(c.out_c, c.in_c, c.kernel)));
    cuda::pack_conv_int8(w.data(), c.out_c, c.in_c, c.kernel, packed.data());
    fdc_epilogue he{bias.data(), nullptr, 0, nullptr, 0.5f};
    std::vector<float> want(out_n);
    cuda::conv2d_int8_host(p, x.data(), packed.data(), he, want.data());
    DeviceBuffer dx = d.put(x), db = d.put(bias), dy = d.zeros(out_n);
    DeviceBuffer dw(*d.be, api.fdc_packed_conv_int8_bytes(c.out_c, c.in_c, c.kernel));
    DeviceBuffer scratch(*d.be, api.fdc_conv2d_int8_scratch_bytes(&p));
    d.be->upload(dw.get(), packed.data(), static_cast<int64_t>(packed.size()));
    fdc_epilogue e{db.f32(), nullptr, 0, nullptr, 0.5f};
    // The library's context is private to the backend: run through a second context of our own.
    fdc_context* ctx = nullptr;
    CHECK_EQ(api.fdc_context_create(0, &ctx), 0);
    d.be->synchronize();
    CHECK_EQ(api.fdc_conv2d_int8(ctx, &p, dx.f32(), dw.get(), &e, dy.f32(), scratch.get()), 0);
    CHECK_EQ(api.fdc_synchronize(ctx), 0);
    api.fdc_context_destroy(ctx);
    result("conv2d_int8." + std::to_string(c.batch) + "x" + std::to_string(c.h) + "x" + std::to_string(c.w) + "x" +
               std::to_string(c.in_c) + "->" + std::to_string(c.out_c) + ".k" + std::to_string(c.kernel) + "s" +
               std::to_string(c.stride),
           max_abs_diff(d.get(dy, out_n), want), 1e-6 * std::max(1.0, max_abs(want)));
  }
}
