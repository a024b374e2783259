// GPU benchmark cases of fusediff_cuda_tests (names start with "bench"; run alone with
// `fusediff_cuda_tests bench`): forward latency on CUDA of the google/ddpm-cifar10-32 config at
// batch 1 and 64 and of the openai/diffusers-cd_imagenet64_l2 config at batch 1 and 16, with
// seeded random weights, in TF32 and fp32, and one step of consistency sampling (forward +
// fused step on the device) at batch 16. A forward here is what loadUNet(..., { device:
// 'cuda' }).forward costs: upload the NCHW sample, run, download the output.
// Prints "BENCH <case> | <median ms> | <min ms> | <images/s>" for scripts/test-cuda.mjs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda_backend.h"
#include "tests/check.h"
#include "tests/random_weights.h"
#include "unet/device_executor.h"

using namespace fusediff;
using unet::BlockKind;

namespace {

using SeededWeights = testing::RandomWeights;

// test/helpers/configs.ts: DDPM_CIFAR10_32.
unet::UNetConfig cifar10_32() {
  unet::UNetConfig c;
  c.block_out_channels = {128, 256, 256, 256};
  c.down_blocks = {BlockKind::Down, BlockKind::AttnDown, BlockKind::Down, BlockKind::Down};
  c.up_blocks = {BlockKind::Up, BlockKind::Up, BlockKind::AttnUp, BlockKind::Up};
  c.layers_per_block = 2;
  c.downsample_padding = 0;
  c.flip_sin_to_cos = false;
  c.freq_shift = 1;
  c.norm_eps = 1e-6;
  c.norm_num_groups = 32;
  return c;
}

// test/helpers/configs.ts: CD_IMAGENET64_L2.
unet::UNetConfig cd_imagenet64() {
  unet::UNetConfig c;
  c.attention_head_dim = 64;
  c.attn_norm_num_groups = 32;
  c.block_out_channels = {192, 384, 576, 768};
  c.down_blocks = {BlockKind::ResnetDownsample, BlockKind::AttnDown, BlockKind::AttnDown, BlockKind::AttnDown};
  c.up_blocks = {BlockKind::AttnUp, BlockKind::AttnUp, BlockKind::AttnUp, BlockKind::ResnetUpsample};
  c.downsample_type = c.upsample_type = unet::Resample::Resnet;
  c.layers_per_block = 3;
  c.norm_num_groups = 32;
  c.class_embed_type = unet::ClassEmbed::Embedding;
  c.num_class_embeds = 1000;
  c.resnet_time_scale_shift = unet::TimeScaleShift::ScaleShift;
  return c;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void bench_model(const char* hub, const unet::UNetConfig& config, int size, uint32_t seed, double timestep, int label,
                 const std::vector<std::pair<int, int>>& batches_runs, int math) {
  SeededWeights w(seed);
  unet::DeviceExecutor gpu(unet::build_plan(config, w, kernels::reference_kernels()), backend::make_cuda_backend(0, math));
  for (auto [batch, runs] : batches_runs) {
    Tensor sample({batch, 3, size, size});
    std::mt19937 gen(batch);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int64_t i = 0; i < sample.numel(); ++i) sample.data()[i] = dist(gen);
    unet::ForwardInput in;
    in.sample = &sample;
    in.timesteps.assign(batch, timestep);
    if (label >= 0) in.class_ids.assign(batch, label);
    std::vector<double> ms;
    for (int i = 0; i < runs + 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      TensorPtr y = gpu.forward(in);
      const double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (i == 0)
        for (int64_t k = 0; k < y->numel(); ++k) CHECK(std::isfinite(y->data()[k]));
      if (i >= 3) ms.push_back(t);
    }
    const double med = median(ms);
    std::printf("BENCH %s batch %d %s forward | %.2f | %.2f | %.1f\n", hub, batch, backend::cuda_math_name(math), med,
                *std::min_element(ms.begin(), ms.end()), 1000.0 * batch / med);
    std::fflush(stdout);
  }
}

}  // namespace

TEST_CASE("bench: forward latency, google/ddpm-cifar10-32 config, batch 1 and 64") {
  for (int math : {FDC_MATH_TF32, FDC_MATH_FP32})
    bench_model("google/ddpm-cifar10-32", cifar10_32(), 32, 1001, 500, -1, {{1, 30}, {64, 10}}, math);
}

TEST_CASE("bench: forward latency, openai/diffusers-cd_imagenet64_l2 config, batch 1 and 16") {
  for (int math : {FDC_MATH_TF32, FDC_MATH_FP32})
    bench_model("openai/diffusers-cd_imagenet64_l2", cd_imagenet64(), 64, 1002, 1095.5, 145, {{1, 20}, {16, 8}}, math);
}
