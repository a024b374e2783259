// The host side of the CUDA backend, testable without a GPU:
//  - the implicit-GEMM indexing and weight packing the CUDA convolutions use
//    (cuda/shared/conv_layout.h) against the reference convolution;
//  - the device executor (plan -> device ops, arena offsets, epilogue pointers, time
//    embedding) on the host emulation backend against the CPU executor, on plans that use
//    every op and every conditioning;
//  - the library loader's errors: no library at a path, not a fusediff library, and with
//    the real library on a machine without a driver/GPU, BackendUnavailable, never a crash.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda_library.h"
#include "backend/device_step.h"
#include "backend/host_backend.h"
#include "conv_layout.h"
#include "core/thread_pool.h"
#include "kernels/reference/reference.h"
#include "tests/check.h"
#include "tests/random_weights.h"
#include "unet/device_executor.h"
#include "unet/executor.h"

using namespace fusediff;

namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

}  // namespace

TEST_CASE("cuda layout: the implicit-GEMM conv over packed weights equals the reference conv") {
  struct Case {
    int batch, h, w, in_c, out_c, kernel, stride, pad;
    bool circular;
  };
  const Case cases[] = {{2, 7, 5, 3, 5, 3, 1, 1, false}, {1, 8, 8, 4, 6, 3, 2, 1, false}, {2, 6, 4, 5, 3, 1, 1, 0, false},
                        {1, 8, 6, 3, 4, 3, 2, 0, false}, {2, 5, 7, 2, 3, 3, 1, 1, true},  {1, 8, 8, 3, 2, 3, 2, 1, true}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    fdc_conv2d_params p{};
    p.batch = c.batch, p.in_h = c.h, p.in_w = c.w, p.in_c = c.in_c, p.out_c = c.out_c;
    p.kernel = c.kernel, p.stride = c.stride, p.pad_top = p.pad_left = c.pad, p.circular = c.circular;
    p.out_h = (c.h + 2 * c.pad - c.kernel) / c.stride + 1;
    p.out_w = (c.w + 2 * c.pad - c.kernel) / c.stride + 1;
    const int64_t out_n = cuda::conv_gemm_m(p) * c.out_c;
    auto x = random_vector(static_cast<size_t>(c.batch) * c.h * c.w * c.in_c, seed++);
    auto w = random_vector(static_cast<size_t>(c.out_c) * c.in_c * c.kernel * c.kernel, seed++);
    auto bias = random_vector(c.out_c, seed++);
    auto batch_bias = random_vector(static_cast<size_t>(c.batch) * (c.out_c + 3), seed++);
    auto residual = random_vector(out_n, seed++);

    std::vector<float> packed(w.size());
    cuda::pack_conv_kco(w.data(), c.out_c, c.in_c, c.kernel, packed.data());
    // W[k][co] = w[co][ci][ky][kx] with k = (ky * kernel + kx) * in_c + ci
    CHECK_EQ(packed[(static_cast<size_t>(c.kernel - 1) * c.in_c + (c.in_c - 1)) * c.out_c + 1],
             w[((static_cast<size_t>(1) * c.in_c + (c.in_c - 1)) * c.kernel + 0) * c.kernel + (c.kernel - 1)]);

    fdc_epilogue e{bias.data(), batch_bias.data(), c.out_c + 3, residual.data(), 0.5f};
    std::vector<float> got(out_n);
    cuda::conv2d_gemm_host(p, x.data(), packed.data(), e, got.data());

    kernels::Conv2dParams rp;
    rp.batch = p.batch, rp.in_h = p.in_h, rp.in_w = p.in_w, rp.in_c = p.in_c;
    rp.out_h = p.out_h, rp.out_w = p.out_w, rp.out_c = p.out_c;
    rp.kernel = p.kernel, rp.stride = p.stride, rp.pad_top = rp.pad_left = c.pad, rp.circular = c.circular;
    kernels::ConvEpilogue re;
    re.bias = bias.data(), re.batch_bias = batch_bias.data(), re.batch_bias_stride = c.out_c + 3;
    re.residual = residual.data(), re.output_scale = 0.5f;
    kernels::PackedConv pw;
    kernels::reference::pack_conv(w.data(), c.out_c, c.in_c, c.kernel, kernels::ConvAlgorithm::Direct, &pw);
    std::vector<float> want(out_n);
    kernels::reference::conv2d(rp, x.data(), pw, re, want.data(), *ThreadPool::global());
    CHECK_EQ(max_abs_diff(got.data(), want.data(), out_n), 0.0);
  }
}

TEST_CASE("cuda layout: bfloat16 rounding is round-to-nearest-even") {
  CHECK_EQ(cuda::float_to_bf16_bits(1.0f), 0x3f80);
  CHECK_EQ(cuda::float_to_bf16_bits(-2.0f), 0xc000);
  float halfway;  // 1 + 2^-8: exactly between two bfloat16 values, rounds to the even one (1.0)
  uint32_t bits = 0x3f808000u;
  __builtin_memcpy(&halfway, &bits, 4);
  CHECK_EQ(cuda::float_to_bf16_bits(halfway), 0x3f80);
  bits = 0x3f818000u;  // between 0x3f81 and 0x3f82: rounds up to the even 0x3f82
  __builtin_memcpy(&halfway, &bits, 4);
  CHECK_EQ(cuda::float_to_bf16_bits(halfway), 0x3f82);
  CHECK_EQ(cuda::float_to_bf16_bits(std::nanf("")) & 0x7fc0, 0x7fc0);
}

namespace {

using RandomWeights = testing::RandomWeights;

using unet::BlockKind;

unet::UNetConfig small_config() {
  unet::UNetConfig c;
  c.in_channels = 3;
  c.out_channels = 3;
  c.down_blocks = {BlockKind::Down, BlockKind::AttnDown};
  c.up_blocks = {BlockKind::AttnUp, BlockKind::Up};
  c.block_out_channels = {16, 32};
  c.layers_per_block = 1;
  c.norm_num_groups = 8;
  c.attention_head_dim = 8;
  return c;
}

// CPU executor (reference kernels) and device executor (host emulation) on the same plan
// and input; returns the largest difference.
double compare_executors(const unet::UNetConfig& config, const unet::ForwardInput& base, int batch, int h, int w,
                         uint32_t seed) {
  RandomWeights w1(seed), w2(seed);
  const auto& table = kernels::reference_kernels();
  unet::Executor cpu(unet::build_plan(config, w1, table));
  unet::DeviceExecutor device(unet::build_plan(config, w2, table), backend::make_host_backend());
  Tensor sample({batch, config.in_channels, h, w});
  auto x = random_vector(static_cast<size_t>(sample.numel()), seed + 7);
  std::copy(x.begin(), x.end(), sample.data());
  unet::ForwardInput in = base;
  in.sample = &sample;
  TensorPtr a = cpu.forward(in);
  TensorPtr b = device.forward(in);
  CHECK(a->shape() == b->shape());
  // A second forward reuses the cached arena and must give the same output.
  TensorPtr c = device.forward(in);
  CHECK_EQ(max_abs_diff(b->data(), c->data(), b->numel()), 0.0);
  return max_abs_diff(a->data(), b->data(), a->numel());
}

}  // namespace

TEST_CASE("device executor: host emulation equals the CPU executor (attention, class ids, circular)") {
  unet::UNetConfig c = small_config();
  c.class_embed_type = unet::ClassEmbed::Embedding;
  c.num_class_embeds = 5;
  unet::ForwardInput in;
  in.timesteps = {3.0, 700.5};
  in.class_ids = {4, 1};
  CHECK_EQ(compare_executors(c, in, 2, 8, 12, 11), 0.0);
  in.circular_padding = true;
  CHECK_EQ(compare_executors(c, in, 2, 8, 8, 12), 0.0);
}

TEST_CASE("device executor: host emulation equals the CPU executor (Fourier, scale-shift, resnet resampling)") {
  unet::UNetConfig c = small_config();
  c.time_embedding_type = unet::TimeEmbedding::Fourier;
  c.resnet_time_scale_shift = unet::TimeScaleShift::ScaleShift;
  c.down_blocks = {BlockKind::ResnetDownsample, BlockKind::AttnDown};
  c.up_blocks = {BlockKind::AttnUp, BlockKind::ResnetUpsample};
  c.downsample_type = unet::Resample::Resnet;
  c.upsample_type = unet::Resample::Resnet;
  c.center_input_sample = true;
  c.class_embed_type = unet::ClassEmbed::Timestep;
  c.mid_block_scale_factor = 1.4142135;
  c.flip_sin_to_cos = false;
  unet::ForwardInput in;
  in.timesteps = {0.5, 20.0, 80.0};
  in.class_values = {1.0, 2.0, 3.0};
  CHECK_EQ(compare_executors(c, in, 3, 8, 8, 21), 0.0);
}

TEST_CASE("device executor: host emulation equals the CPU executor (identity class vectors, no attention)") {
  unet::UNetConfig c = small_config();
  c.down_blocks = {BlockKind::Down, BlockKind::Down};
  c.up_blocks = {BlockKind::Up, BlockKind::Up};
  c.add_attention = false;
  c.class_embed_type = unet::ClassEmbed::Identity;
  unet::ForwardInput in;
  in.timesteps = {10.0};
  in.class_vectors = random_vector(64, 5);  // time_dim = 4 x 16
  CHECK_EQ(compare_executors(c, in, 1, 4, 8, 31), 0.0);
}

TEST_CASE("device executor: bad input fails like the CPU executor") {
  RandomWeights w(1);
  unet::DeviceExecutor device(unet::build_plan(small_config(), w, kernels::reference_kernels()), backend::make_host_backend());
  Tensor sample({1, 3, 5, 8});  // 5 is not a multiple of 2
  unet::ForwardInput in;
  in.sample = &sample;
  in.timesteps = {1.0};
  CHECK_THROWS_CODE(device.forward(in), ErrorCode::Shape);
  RandomWeights w2(1);
  // A plan packed for a CPU kernel table is refused (the device packs PyTorch-layout weights).
  CHECK_THROWS_CODE(unet::DeviceExecutor(unet::build_plan(small_config(), w2, kernels::kernels_by_name("generic")),
                                         backend::make_host_backend()),
                    ErrorCode::Internal);
}

TEST_CASE("cuda library: a missing library is BackendUnavailable naming the path") {
  CHECK_THROWS_WITH(backend::CudaLibrary::open("/nonexistent/dir/libfusediff_cuda.so"), ErrorCode::BackendUnavailable,
                    "not found or did not load at /nonexistent/dir/libfusediff_cuda.so");
  // A shared library that is not ours.
  CHECK_THROWS_WITH(backend::CudaLibrary::open("libm.so.6"), ErrorCode::BackendUnavailable, "not a fusediff CUDA library");
  // The default path sits beside the binary holding the engine, unless the variable says otherwise.
  setenv("FUSEDIFF_CUDA_LIBRARY", "/elsewhere/lib.so", 1);
  CHECK_EQ(backend::CudaLibrary::default_path(), std::string("/elsewhere/lib.so"));
  unsetenv("FUSEDIFF_CUDA_LIBRARY");
  const std::string def = backend::CudaLibrary::default_path();
  CHECK(def.size() > 20 && def.compare(def.size() - 20, 20, "/libfusediff_cuda.so") == 0);
}

#if defined(FUSEDIFF_CUDA_LIBRARY_PATH)
TEST_CASE("cuda library: the built library loads; without a driver or GPU its errors are clean") {
  auto lib = backend::CudaLibrary::open(FUSEDIFF_CUDA_LIBRARY_PATH);
  CHECK(lib->build_info().find("CUDA runtime") != std::string::npos);
  const auto& api = lib->api();
  int count = -1;
  const int status = api.fdc_device_count(&count);
  if (status == FDC_OK) {
    CHECK(count > 0);  // a GPU machine: nothing more to check here (npm run test:cuda does)
    return;
  }
  CHECK(status == FDC_ERR_NO_DRIVER || status == FDC_ERR_NO_DEVICE);
  CHECK_EQ(count, 0);
  const std::string message = api.fdc_last_error();
  CHECK(message.find("cudaGetDeviceCount") != std::string::npos);
  CHECK_THROWS_CODE(lib->devices(), ErrorCode::BackendUnavailable);
  // Everything that needs a device fails cleanly too.
  fdc_context* ctx = reinterpret_cast<fdc_context*>(0x1);
  CHECK(api.fdc_context_create(0, &ctx) != FDC_OK);
  CHECK(ctx == nullptr);
  fdc_device_props props;
  CHECK(api.fdc_device_properties(0, &props) != FDC_OK);
  // Null arguments are argument errors, not crashes.
  CHECK_EQ(api.fdc_device_count(nullptr), static_cast<int>(FDC_ERR_ARGUMENT));
  CHECK_EQ(api.fdc_malloc(nullptr, 16, nullptr), static_cast<int>(FDC_ERR_ARGUMENT));
  CHECK_EQ(api.fdc_conv2d(nullptr, nullptr, nullptr, nullptr, 0, nullptr, nullptr), static_cast<int>(FDC_ERR_ARGUMENT));
  api.fdc_context_destroy(nullptr);
  CHECK_EQ(api.fdc_packed_conv_bytes(8, 4, 3, FDC_MATH_TF32), int64_t{8 * 4 * 9 * 4});
  CHECK_EQ(api.fdc_packed_conv_bytes(8, 4, 3, FDC_MATH_BF16), int64_t{8 * 4 * 9 * 2});
  CHECK_EQ(api.fdc_packed_conv_bytes(8, 4, 3, 7), int64_t{-1});
}
#endif

TEST_CASE("device step: the upload/run/download path equals the CPU step (host emulation)") {
  const int64_t B = 2, C = 3, P = 10, n = B * C * P;
  auto x = random_vector(n, 1), m = random_vector(2 * n, 2), y = random_vector(n, 3), z = random_vector(n, 4);
  for (float& v : m) v = std::fabs(v) + 0.1f;
  std::vector<double> ax{1.0, 0.5}, am{-0.2, 0.3}, bx{0.4, 0.6}, b0{0.5, 0.1}, bz{0.3, 0.2}, by{0.1, 0.0}, e0{-1, -2}, e1{0.5, 1};
  const std::vector<uint64_t> seeds{5, 6};
  auto backend = backend::make_host_backend();
  for (int mode = 0; mode < 3; ++mode) {
    kernels::AffineStepParams p;
    p.batch = B, p.channels = C, p.pixels = P;
    p.ax = ax.data(), p.am = am.data(), p.bx = bx.data(), p.b0 = b0.data(), p.bz = bz.data(), p.by = by.data();
    p.e0 = e0.data(), p.e1 = e1.data();
    if (mode == 1) p.clamp = kernels::ClampMode::Range, p.clamp_lo = -0.3, p.clamp_hi = 0.4;
    if (mode == 2) p.noise_scale = kernels::NoiseScaleMode::ExpV;
    kernels::ModelOutputView view{m.data(), mode == 2 ? 2 * C : C, false, 1.0};
    kernels::NoiseSource noise;
    if (mode == 0) noise.tensor = z.data();
    else noise.seeds = seeds.data(), noise.stream = 3;
    std::vector<float> want(n), want_x0(n), got(n), got_x0(n);
    kernels::affine_step(p, x.data(), view, noise, y.data(), want.data(), want_x0.data(), *ThreadPool::global());
    backend::affine_step_with(*backend, p, x.data(), view, B * view.m_channels * P, noise, y.data(), got.data(), got_x0.data());
    CHECK_EQ(max_abs_diff(got.data(), want.data(), n), 0.0);
    CHECK_EQ(max_abs_diff(got_x0.data(), want_x0.data(), n), 0.0);
  }
  kernels::AffineStepParams dynamic;
  dynamic.clamp = kernels::ClampMode::Dynamic;
  CHECK(!backend::device_step_supported(dynamic));
}

TEST_CASE("cuda layout: INT8 packing and the INT8 conv's host twin (quantization error bound)") {
  // Packing: per-output-channel scales, bytes of k = 4g + j in word (g, co), zero past K.
  const int out_c = 3, in_c = 3, kernel = 1;  // K = 3: one word per channel, byte 3 zero
  const std::vector<float> w{1.0f, -0.6f, 0.25f, /**/ 0.0f, 0.0f, 0.0f, /**/ -2.0f, 1.1f, 0.0f};
  std::vector<unsigned char> packed(static_cast<size_t>(cuda::packed_conv_int8_bytes(out_c, in_c, kernel)));
  CHECK_EQ(packed.size(), size_t{3 * 4 + 3 * 4});
  cuda::pack_conv_int8(w.data(), out_c, in_c, kernel, packed.data());
  const auto* words = reinterpret_cast<const uint32_t*>(packed.data());
  const auto* scales = reinterpret_cast<const float*>(words + 3);
  CHECK_NEAR(scales[0], 1.0 / 127, 1e-9);
  CHECK_EQ(scales[1], 1.0f);  // an all-zero channel
  CHECK_NEAR(scales[2], 2.0 / 127, 1e-9);
  CHECK_EQ(words[0], 0x0020b47fu);  // bytes 127, -76 (-76.2), 32 (31.75), 0
  CHECK_EQ(words[1], 0u);
  CHECK_EQ(words[2], 0x00004681u);  // bytes -127, 70 (69.85), 0, 0

  // The convolution: within the quantization error of the float reference.
  fdc_conv2d_params p{};
  p.batch = 2, p.in_h = 8, p.in_w = 6, p.in_c = 7, p.out_c = 9, p.kernel = 3, p.stride = 1, p.pad_top = p.pad_left = 1;
  p.out_h = 8, p.out_w = 6;
  auto x = random_vector(static_cast<size_t>(2 * 8 * 6 * 7), 41);
  auto wt = random_vector(static_cast<size_t>(9 * 7 * 9), 42, 0.2f);
  auto bias = random_vector(9, 43);
  std::vector<unsigned char> pw(static_cast<size_t>(cuda::packed_conv_int8_bytes(9, 7, 3)));
  cuda::pack_conv_int8(wt.data(), 9, 7, 3, pw.data());
  fdc_epilogue e{bias.data(), nullptr, 0, nullptr, 1.0f};
  const int64_t n = cuda::conv_gemm_m(p) * p.out_c;
  std::vector<float> got(n), want(n), packed_f(wt.size());
  cuda::conv2d_int8_host(p, x.data(), pw.data(), e, got.data());
  cuda::pack_conv_kco(wt.data(), 9, 7, 3, packed_f.data());
  cuda::conv2d_gemm_host(p, x.data(), packed_f.data(), e, want.data());
  // Each product's error is at most ~(|x| s_w + |w| s_x) / 2: with |x| <= 1, |w| <= 0.2 and
  // K = 63 terms, a bound of 63 * (0.2/127 + 0.2/127) / 2 ~ 0.05; random signs keep it well below.
  const double err = max_abs_diff(got.data(), want.data(), n);
  std::printf("  int8 conv vs float: max abs error %.4f\n", err);
  CHECK(err < 0.05);
  CHECK(err > 0.0);  // it did quantize
}

TEST_CASE("device step: the Langevin corrector through the device path equals the CPU's (host emulation)") {
  const int64_t B = 3, C = 2, P = 50, n = B * C * P;
  auto x = random_vector(n, 11), m = random_vector(2 * n, 12), z = random_vector(n, 13);
  std::vector<double> k{-1.5, 0.5, 2.0}, alpha{0.9, 1.0, 0.99};
  const std::vector<uint64_t> seeds{1, 2, 3};
  auto backend = backend::make_host_backend();
  for (int mode = 0; mode < 3; ++mode) {
    kernels::LangevinParams p;
    p.batch = B, p.channels = C, p.pixels = P, p.score_scale = k.data(), p.snr = 0.16;
    p.alpha = mode == 1 ? alpha.data() : nullptr;
    p.batch_mean_norms = mode == 2;
    kernels::ModelOutputView view{m.data(), C, mode == 2, 2.0};
    kernels::NoiseSource noise;
    if (mode == 0) noise.tensor = z.data();
    else noise.seeds = seeds.data(), noise.stream = 4;
    std::vector<float> want(n), want_mean(n), got(n), got_mean(n);
    std::vector<double> want_eps(B), got_eps(B);
    kernels::langevin_step(p, x.data(), view, noise, want.data(), want_mean.data(), want_eps.data(), *ThreadPool::global());
    backend::langevin_step_with(*backend, p, x.data(), view, (mode == 2 ? 2 : 1) * n, noise, got.data(), got_mean.data(),
                                got_eps.data());
    CHECK(max_abs_diff(got.data(), want.data(), n) <= 1e-6);
    CHECK(max_abs_diff(got_mean.data(), want_mean.data(), n) <= 1e-6);
    for (int64_t b = 0; b < B; ++b) CHECK_NEAR(got_eps[b], want_eps[b], 1e-12 * std::max(1.0, want_eps[b]));
  }
}
