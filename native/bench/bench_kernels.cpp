// Micro-benchmark of the convolution kernels on the layers that dominate diffusion U-Nets
// (PERFORMANCE.md): GFLOP/s per kernel table, median of repeated runs, against the peak the
// caller states (FUSEDIFF_PEAK_GFLOPS, default 230 = 2 Zen 4 cores x 3.6 GHz x 32 FLOP/cycle).
//   fusediff_bench_kernels [threads]      (float32, int8 and bf16 columns)
// FUSEDIFF_BENCH_FAST=1: only the best kernel table of each precision; FUSEDIFF_BENCH_F32=1:
// float32 columns only; FUSEDIFF_BENCH_ONLY=text: only the layers whose name contains it;
// FUSEDIFF_BENCH_COLD=1: caches flushed before every call.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"

using namespace fusediff;
using namespace fusediff::kernels;

namespace {

struct Layer {
  const char* name;
  int batch, h, w, in_c, out_c, kernel, stride;
  bool residual = false;  // the epilogue adds a residual tensor (ResNet and attention outputs)
};

// Median seconds of 25 calls of fn. FUSEDIFF_BENCH_COLD=1: write 64 MB (more than the L3)
// before every call, as a U-Net's forward does between two calls of one layer.
template <class Fn>
double median_of_calls(Fn fn) {
  std::vector<double> times;
  std::vector<float> flush(std::getenv("FUSEDIFF_BENCH_COLD") ? 16 << 20 : 0);
  for (int i = 0; i < 25; ++i) {
    for (size_t j = 0; j < flush.size(); j += 16) flush[j] += 1.0f;
    auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

double median_seconds(const KernelTable& t, const Layer& l, ThreadPool& pool, Precision precision,
                      ConvAlgorithm algorithm) {
  Conv2dParams p;
  p.batch = l.batch;
  p.in_h = l.h, p.in_w = l.w, p.in_c = l.in_c;
  p.out_h = l.h / l.stride, p.out_w = l.w / l.stride, p.out_c = l.out_c;
  p.kernel = l.kernel;
  p.stride = l.stride;
  p.pad_top = p.pad_left = l.kernel / 2;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> x(static_cast<size_t>(l.batch) * l.h * l.w * l.in_c), w(static_cast<size_t>(l.out_c) * l.in_c * l.kernel * l.kernel),
      b(l.out_c), y(static_cast<size_t>(l.batch) * p.out_h * p.out_w * l.out_c), residual(l.residual ? y.size() : 0);
  for (float& v : x) v = d(gen);
  for (float& v : w) v = d(gen);
  for (float& v : residual) v = d(gen);
  PackedConv packed;
  std::vector<int8_t> q(w.size());
  std::vector<float> scale(l.out_c);
  quantize_per_channel(w.data(), l.out_c, static_cast<int64_t>(l.in_c) * l.kernel * l.kernel, q.data(), scale.data());
  if (precision == Precision::I8)
    t.pack_conv_int8(q.data(), scale.data(), l.out_c, l.in_c, l.kernel, &packed);
  else if (precision == Precision::BF16)
    t.pack_conv_bf16(w.data(), l.out_c, l.in_c, l.kernel, &packed);
  else
    t.pack_conv(w.data(), l.out_c, l.in_c, l.kernel, algorithm, &packed);
  AlignedBuffer scratch(static_cast<size_t>(std::max<int64_t>(64, t.lowp_conv_scratch_bytes(p, precision))));
  ConvEpilogue e;
  e.bias = b.data();
  if (l.residual) e.residual = residual.data();
  return median_of_calls([&] {
    if (precision == Precision::I8)
      t.conv2d_int8(p, x.data(), packed, e, y.data(), scratch.data(), pool);
    else if (precision == Precision::BF16)
      t.conv2d_bf16(p, x.data(), packed, e, y.data(), scratch.data(), pool);
    else
      t.conv2d(p, x.data(), packed, e, y.data(), pool);
  });
}

// Attention softmax(QK^T / sqrt(d)) V alone, on a [batch][tokens][3 x channels] QKV tensor.
struct AttentionCase {
  const char* name;
  AttentionParams p;
};

double attention_median_seconds(const KernelTable& t, const AttentionParams& p, ThreadPool& pool) {
  std::mt19937 gen(2);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> qkv(static_cast<size_t>(p.batch) * p.tokens * 3 * p.channels),
      out(static_cast<size_t>(p.batch) * p.tokens * p.channels);
  for (float& v : qkv) v = d(gen);
  AlignedBuffer scratch(static_cast<size_t>(t.attention_scratch_floats(p) + 16) * sizeof(float));
  return median_of_calls([&] { t.attention(p, qkv.data(), out.data(), scratch.f32(), pool); });
}

// GroupNorm (+ SiLU) alone, 32 groups, on a [batch][pixels][channels] tensor.
struct GroupNormCase {
  const char* name;
  int batch, pixels, channels;
  bool silu;
};

double group_norm_median_seconds(const KernelTable& t, const GroupNormCase& c, ThreadPool& pool) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(-1, 1);
  GroupNormParams p;
  p.batch = c.batch, p.pixels = c.pixels, p.channels = c.channels, p.groups = 32, p.silu = c.silu;
  std::vector<float> x(static_cast<size_t>(c.batch) * c.pixels * c.channels), y(x.size()), gamma(c.channels),
      beta(c.channels);
  for (float& v : x) v = d(gen);
  for (float& v : gamma) v = d(gen);
  for (float& v : beta) v = d(gen);
  p.gamma = gamma.data(), p.beta = beta.data();
  AlignedBuffer scratch(static_cast<size_t>(t.group_norm_scratch_floats(p) + 16) * sizeof(float));
  return median_of_calls([&] { t.group_norm(p, x.data(), y.data(), scratch.f32(), pool); });
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : ThreadPool::default_threads();
  const char* peak_env = std::getenv("FUSEDIFF_PEAK_GFLOPS");
  const double peak = peak_env ? std::atof(peak_env) : 230.0;
  ThreadPool pool(threads);
  const Layer layers[] = {
      {"3x3 128->128 32x32 b1", 1, 32, 32, 128, 128, 3, 1},
      {"3x3 256->256 16x16 b1", 1, 16, 16, 256, 256, 3, 1},
      {"3x3 256->256 8x8 b8", 8, 8, 8, 256, 256, 3, 1},
      {"3x3 192->192 64x64 b1", 1, 64, 64, 192, 192, 3, 1},
      {"3x3 384->384 32x32 b1", 1, 32, 32, 384, 384, 3, 1},
      {"3x3 128->128 32x32 b8", 8, 32, 32, 128, 128, 3, 1},
      {"3x3 128->128 32x32 b8 +res", 8, 32, 32, 128, 128, 3, 1, true},
      {"1x1 256->768 16x16 b1", 1, 16, 16, 256, 768, 1, 1},
      {"1x1 256->768 16x16 b8", 8, 16, 16, 256, 768, 1, 1},
      {"1x1 256->256 16x16 b8 +res", 8, 16, 16, 256, 256, 1, 1, true},
      // The embedded tile model's top levels (block_out_channels 32, 64, 128) at batch 16.
      {"3x3 32->32 32x32 b16", 16, 32, 32, 32, 32, 3, 1},
      {"3x3 64->64 16x16 b16", 16, 16, 16, 64, 64, 3, 1},
      {"1x1 128->384 8x8 b16", 16, 8, 8, 128, 384, 1, 1},
  };
  // Columns: float32 per float table (direct, then Winograd where it applies), then int8 and bf16 per
  // low-precision table. GFLOP/s counts 2 per multiply-add of the direct convolution whatever the
  // precision or algorithm (so Winograd can exceed 100 %); the percentage is of the float32 peak.
  struct Column {
    const KernelTable* table;
    Precision precision;
    std::string label;
    ConvAlgorithm algorithm = ConvAlgorithm::Direct;
  };
  std::vector<Column> columns;
  const bool fast = std::getenv("FUSEDIFF_BENCH_FAST") != nullptr;
  const CpuFeatures& f = cpu_features();
  std::vector<const KernelTable*> tables{&kernels_by_name("generic")};
  if (f.avx2) tables.push_back(&kernels_by_name("avx2"));
  if (f.avx512) tables.push_back(&kernels_by_name("avx512"));
  std::vector<const KernelTable*> lowp = tables;
  if (f.avx512_vnni) lowp.push_back(&kernels_by_name("avx512_vnni"));
  if (f.avx512_vnni && f.avx512_bf16) lowp.push_back(&kernels_by_name("avx512_bf16"));
  if (fast) tables = {tables.back()}, lowp = {lowp.back()};
  for (const KernelTable* t : tables) columns.push_back({t, Precision::F32, std::string(t->name) + " f32"});
  for (const KernelTable* t : tables)
    columns.push_back({t, Precision::F32, std::string(t->name) + " winograd", ConvAlgorithm::Winograd2x2});
  if (std::getenv("FUSEDIFF_BENCH_F32") == nullptr) {
    for (const KernelTable* t : lowp) columns.push_back({t, Precision::I8, std::string(t->lowp_name) + " i8"});
    for (const KernelTable* t : lowp) columns.push_back({t, Precision::BF16, std::string(t->lowp_name) + " bf16"});
  }
  const char* only = std::getenv("FUSEDIFF_BENCH_ONLY");
  std::printf("threads %d, peak %.0f GFLOP/s\n%-26s", threads, peak, "layer");
  for (const Column& c : columns) std::printf(" %16s", c.label.c_str());
  std::printf("\n");
  for (const Layer& l : layers) {
    if (only != nullptr && std::string(l.name).find(only) == std::string::npos) continue;
    const double flop = 2.0 * l.batch * (l.h / l.stride) * (l.w / l.stride) * l.out_c * l.in_c * l.kernel * l.kernel;
    std::printf("%-26s", l.name);
    for (const Column& c : columns) {
      if (c.algorithm == ConvAlgorithm::Winograd2x2 &&
          !winograd_applies(l.kernel, l.stride, l.kernel / 2, l.in_c, l.out_c)) {
        std::printf(" %16s", "-");
        continue;
      }
      const double gflops = flop / median_seconds(*c.table, l, pool, c.precision, c.algorithm) / 1e9;
      std::printf(" %7.1f (%4.0f%%)", gflops, 100 * gflops / peak);
    }
    std::printf("\n");
  }
  const AttentionCase attention_cases[] = {
      {"attn cifar 256t 256c b8", {8, 256, 256, 1}},
      {"attn imnet 1024t 384c/6", {1, 1024, 384, 6}},
      {"attn imnet 256t 576c/9", {1, 256, 576, 9}},
      {"attn tiles 64t 128c/4 b16", {16, 64, 128, 4}},
      // 64x64 tokens: where whole score rows (4096 x 64 floats, 1 MiB per thread) fill L2.
      {"attn 4096t 256c/4", {1, 4096, 256, 4}},
      {"attn 4096t 512c/2", {1, 4096, 512, 2}},
  };
  std::printf("%-26s", "attention (QK^T, PV)");
  for (const KernelTable* t : tables) std::printf(" %16s", (std::string(t->name) + " f32").c_str());
  std::printf("\n");
  for (const AttentionCase& a : attention_cases) {
    if (only != nullptr && std::string(a.name).find(only) == std::string::npos) continue;
    const double flop = 4.0 * a.p.batch * a.p.tokens * a.p.tokens * a.p.channels;
    std::printf("%-26s", a.name);
    for (const KernelTable* t : tables) {
      const double gflops = flop / attention_median_seconds(*t, a.p, pool) / 1e9;
      std::printf(" %7.1f (%4.0f%%)", gflops, 100 * gflops / peak);
    }
    std::printf("\n");
  }
  // GroupNorm reads its input twice (statistics, then normalize) and writes once: 12 bytes per
  // element; ns per element tells SiLU's cost apart.
  const GroupNormCase norm_cases[] = {
      {"gn+silu 128@32x32 b8", 8, 1024, 128, true},
      {"gn 128@32x32 b8", 8, 1024, 128, false},
      {"gn+silu 256@16x16 b8", 8, 256, 256, true},
      {"gn+silu 32@32x32 b16", 16, 1024, 32, true},
  };
  std::printf("%-26s", "group norm (GB/s, ns/elem)");
  for (const KernelTable* t : tables) std::printf(" %16s", t->name);
  std::printf("\n");
  for (const GroupNormCase& c : norm_cases) {
    if (only != nullptr && std::string(c.name).find(only) == std::string::npos) continue;
    const double elements = static_cast<double>(c.batch) * c.pixels * c.channels;
    std::printf("%-26s", c.name);
    for (const KernelTable* t : tables) {
      const double s = group_norm_median_seconds(*t, c, pool);
      std::printf(" %6.1f (%5.3f)", 12 * elements / s / 1e9, s / elements * 1e9);
    }
    std::printf("\n");
  }
  return 0;
}
