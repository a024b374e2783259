// Micro-benchmark of the convolution kernels on the layers that dominate diffusion U-Nets
// (PERFORMANCE.md): GFLOP/s per kernel table, median of repeated runs, against the peak the
// caller states (FUSEDIFF_PEAK_GFLOPS, default 230 = 2 Zen 4 cores x 3.6 GHz x 32 FLOP/cycle).
//   fusediff_bench_kernels [threads]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
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
};

double median_seconds(const KernelTable& t, const Layer& l, ThreadPool& pool) {
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
      b(l.out_c), y(static_cast<size_t>(l.batch) * p.out_h * p.out_w * l.out_c);
  for (float& v : x) v = d(gen);
  for (float& v : w) v = d(gen);
  PackedConv packed;
  t.pack_conv(w.data(), l.out_c, l.in_c, l.kernel, &packed);
  ConvEpilogue e;
  e.bias = b.data();
  std::vector<double> times;
  for (int i = 0; i < 25; ++i) {
    auto start = std::chrono::steady_clock::now();
    t.conv2d(p, x.data(), packed, e, y.data(), pool);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
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
      {"1x1 256->768 16x16 b1", 1, 16, 16, 256, 768, 1, 1},
  };
  std::vector<const KernelTable*> tables{&kernels_by_name("generic")};
  if (cpu_features().avx2) tables.push_back(&kernels_by_name("avx2"));
  if (cpu_features().avx512) tables.push_back(&kernels_by_name("avx512"));
  std::printf("threads %d, peak %.0f GFLOP/s\n%-26s", threads, peak, "layer");
  for (const KernelTable* t : tables) std::printf(" %16s", t->name);
  std::printf("\n");
  for (const Layer& l : layers) {
    const double flop = 2.0 * l.batch * (l.h / l.stride) * (l.w / l.stride) * l.out_c * l.in_c * l.kernel * l.kernel;
    std::printf("%-26s", l.name);
    for (const KernelTable* t : tables) {
      const double gflops = flop / median_seconds(*t, l, pool) / 1e9;
      std::printf(" %7.1f (%4.0f%%)", gflops, 100 * gflops / peak);
    }
    std::printf("\n");
  }
  return 0;
}
