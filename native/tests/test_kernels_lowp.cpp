// The int8 and bf16 convolutions: every fast table against the reference (the definitions
// in kernels.h / reference/conv2d_lowp.cpp), with 1 and 2 threads (identical results), over
// the shapes of test_kernels.cpp (tiles, tails, borders, stride 2 with both paddings, 1x1,
// circular padding, every epilogue term); and the reference against the float convolution,
// so that the oracle itself is checked against the quantity it approximates.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "tests/check.h"

using namespace fusediff;
using namespace fusediff::kernels;

namespace {

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

// Every table whose low-precision kernels this CPU can run (the float kernels repeat).
std::vector<const KernelTable*> lowp_tables() {
  std::vector<const KernelTable*> tables{&kernels_by_name("generic")};
  const CpuFeatures& f = cpu_features();
  if (f.avx2) tables.push_back(&kernels_by_name("avx2"));
  if (f.avx512) tables.push_back(&kernels_by_name("avx512"));
  if (f.avx512_vnni) tables.push_back(&kernels_by_name("avx512_vnni"));
  if (f.avx512_vnni && f.avx512_bf16) tables.push_back(&kernels_by_name("avx512_bf16"));
  return tables;
}

struct Case {
  int batch, h, w, in_c, out_c, kernel, stride, pad;
  bool bias, batch_bias, residual;
  float scale;
  bool circular = false;
};

Conv2dParams params(const Case& c) {
  Conv2dParams p;
  p.batch = c.batch;
  p.in_h = c.h, p.in_w = c.w, p.in_c = c.in_c;
  p.out_h = (c.h + 2 * c.pad - c.kernel) / c.stride + 1;
  p.out_w = (c.w + 2 * c.pad - c.kernel) / c.stride + 1;
  if (c.pad == 0 && c.stride == 2) p.out_h = c.h / 2, p.out_w = c.w / 2;  // diffusers' asymmetric (0,1,0,1) pad
  p.out_c = c.out_c;
  p.kernel = c.kernel;
  p.stride = c.stride;
  p.pad_top = p.pad_left = c.pad;
  p.circular = c.circular;
  return p;
}

struct Inputs {
  std::vector<float> x, w, b, bb, res;
  std::vector<int8_t> q;
  std::vector<float> wscale;
};

std::vector<float> run(const KernelTable& t, Precision precision, const Case& c, const Inputs& in, ThreadPool& pool) {
  const Conv2dParams p = params(c);
  PackedConv packed;
  if (precision == Precision::I8)
    t.pack_conv_int8(in.q.data(), in.wscale.data(), c.out_c, c.in_c, c.kernel, &packed);
  else if (precision == Precision::BF16)
    t.pack_conv_bf16(in.w.data(), c.out_c, c.in_c, c.kernel, &packed);
  else
    t.pack_conv(in.w.data(), c.out_c, c.in_c, c.kernel, ConvAlgorithm::Direct, &packed);
  ConvEpilogue e;
  if (c.bias) e.bias = in.b.data();
  if (c.batch_bias) e.batch_bias = in.bb.data(), e.batch_bias_stride = c.out_c + 5;
  if (c.residual) e.residual = in.res.data();
  e.output_scale = c.scale;
  std::vector<float> y(static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c, NAN);
  std::vector<uint8_t> scratch(static_cast<size_t>(t.lowp_conv_scratch_bytes(p, precision)) + 64);
  void* aligned = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  if (precision == Precision::I8)
    t.conv2d_int8(p, in.x.data(), packed, e, y.data(), aligned, pool);
  else if (precision == Precision::BF16)
    t.conv2d_bf16(p, in.x.data(), packed, e, y.data(), aligned, pool);
  else
    t.conv2d(p, in.x.data(), packed, e, y.data(), pool);
  return y;
}

const std::vector<Case> kCases = {
    {1, 8, 8, 16, 16, 3, 1, 1, true, false, false, 1.0f},
    {2, 5, 13, 3, 20, 3, 1, 1, true, true, true, 0.5f},     // odd sizes, channel tails (3 in, 20 out)
    {1, 1, 1, 7, 33, 3, 1, 1, true, false, false, 1.0f},    // all border
    {1, 2, 2, 5, 16, 3, 2, 0, true, false, false, 1.0f},    // window never fully inside
    {2, 16, 12, 24, 40, 3, 2, 1, true, true, false, 1.0f},  // stride 2, pad 1
    {1, 16, 16, 32, 32, 3, 2, 0, true, false, true, 1.0f},  // stride 2, pad 0 (asymmetric)
    {3, 6, 17, 48, 64, 1, 1, 0, true, false, true, 0.7f},   // 1x1 with residual
    {1, 1, 9, 64, 96, 1, 1, 0, true, false, false, 1.0f},   // a linear layer over 9 rows
    {1, 32, 32, 64, 48, 3, 1, 1, true, true, true, 1.0f},
    {2, 9, 12, 21, 36, 3, 1, 1, true, true, false, 1.0f, true},  // circular padding, odd channels
    {1, 16, 8, 16, 16, 3, 2, 1, true, false, false, 1.0f, true},  // circular, stride 2
    {1, 1, 3, 8, 16, 3, 1, 1, true, false, false, 1.0f, true},    // wraps onto itself
};

Inputs make_inputs(const Case& c, uint32_t& seed) {
  Inputs in;
  const Conv2dParams p = params(c);
  in.x = random_vector(static_cast<size_t>(c.batch) * c.h * c.w * c.in_c, seed++);
  // Images of different magnitude: the per-image scales must not mix.
  for (int n = 1; n < c.batch; ++n)
    for (size_t i = 0; i < static_cast<size_t>(c.h) * c.w * c.in_c; ++i) in.x[n * c.h * c.w * c.in_c + i] *= 3.0f * n;
  in.w = random_vector(static_cast<size_t>(c.out_c) * c.in_c * c.kernel * c.kernel, seed++, 0.2f);
  in.b = random_vector(c.out_c, seed++);
  in.bb = random_vector(static_cast<size_t>(c.batch) * (c.out_c + 5), seed++);
  in.res = random_vector(static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c, seed++);
  in.q.resize(in.w.size());
  in.wscale.resize(c.out_c);
  quantize_per_channel(in.w.data(), c.out_c, static_cast<int64_t>(c.in_c) * c.kernel * c.kernel, in.q.data(),
                       in.wscale.data());
  return in;
}

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::fmax(m, std::fabs(x));
  return m;
}
double max_err(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

}  // namespace

TEST_CASE("quantize_per_channel: symmetric, per output channel, round half away from zero") {
  const float w[] = {0.5f, -1.0f, 0.25f, 0.0f, 0.0f, 0.0f, 2.0f, 1.0f, -0.0078125f};
  int8_t q[9];
  float s[3];
  quantize_per_channel(w, 3, 3, q, s);
  CHECK_EQ(s[0], 1.0f / 127.0f);
  CHECK_EQ(static_cast<int>(q[0]), 64);  // 63.5 rounds away from zero
  CHECK_EQ(static_cast<int>(q[1]), -127);
  CHECK_EQ(static_cast<int>(q[2]), 32);
  CHECK_EQ(s[1], 1.0f);  // an all-zero channel
  CHECK_EQ(static_cast<int>(q[3]), 0);
  CHECK_EQ(s[2], 2.0f / 127.0f);
  CHECK_EQ(static_cast<int>(q[6]), 127);
  CHECK_EQ(static_cast<int>(q[8]), 0);  // -0.496 rounds to 0
  CHECK_EQ(float_to_bf16(1.0f), 0x3f80);
  CHECK_EQ(float_to_bf16(1.00390625f), 0x3f80);  // halfway: to even
  CHECK_EQ(float_to_bf16(1.01171875f), 0x3f82);  // halfway: to even (up)
  CHECK_EQ(float_to_bf16(-2.0f), 0xc000);
  CHECK((float_to_bf16(NAN) & 0x7fff) > 0x7f80);
}

TEST_CASE("conv2d_int8: every fast table matches the reference, thread-count independent") {
  ThreadPool one(1), two(2);
  uint32_t seed = 100;
  for (const Case& c : kCases) {
    const Inputs in = make_inputs(c, seed);
    const std::vector<float> expected = run(reference_kernels(), Precision::I8, c, in, one);
    // The oracle against the float convolution: int8 weights and activations keep about
    // two significant digits of each product; sums of many of them keep their relative error small.
    const std::vector<float> exact = run(reference_kernels(), Precision::F32, c, in, one);
    CHECK(max_err(expected, exact) <= 0.03 * (1 + max_abs(exact)));
    for (const KernelTable* table : lowp_tables()) {
      const std::vector<float> y1 = run(*table, Precision::I8, c, in, one);
      const std::vector<float> y2 = run(*table, Precision::I8, c, in, two);
      // Integer sums are exact on every path; only the float epilogue (fused multiply-adds
      // where the ISA has them) may differ in the last bit.
      CHECK(max_err(y1, expected) <= 1e-6 * (1 + max_abs(expected)));
      CHECK(y1 == y2);
    }
  }
}

TEST_CASE("conv2d_bf16: every fast table matches the reference, thread-count independent") {
  ThreadPool one(1), two(2);
  uint32_t seed = 200;
  for (const Case& c : kCases) {
    const Inputs in = make_inputs(c, seed);
    const std::vector<float> expected = run(reference_kernels(), Precision::BF16, c, in, one);
    const std::vector<float> exact = run(reference_kernels(), Precision::F32, c, in, one);
    CHECK(max_err(expected, exact) <= 0.01 * (1 + max_abs(exact)));  // bf16 keeps ~3 digits per input
    for (const KernelTable* table : lowp_tables()) {
      const std::vector<float> y1 = run(*table, Precision::BF16, c, in, one);
      const std::vector<float> y2 = run(*table, Precision::BF16, c, in, two);
      // Exact products, float32 sums in another order than the reference's.
      CHECK(max_err(y1, expected) <= 1e-5 * (1 + max_abs(expected)));
      CHECK(y1 == y2);
    }
  }
}

TEST_CASE("conv2d_int8: an image with a NaN gives NaN, the other images are unaffected") {
  ThreadPool one(1);
  const Case c{2, 4, 4, 8, 16, 3, 1, 1, true, false, false, 1.0f};
  uint32_t seed = 300;
  Inputs in = make_inputs(c, seed);
  Inputs bad = in;
  bad.x[5] = NAN;
  std::vector<const KernelTable*> tables = lowp_tables();
  tables.push_back(&reference_kernels());
  for (const KernelTable* table : tables) {
    const std::vector<float> clean = run(*table, Precision::I8, c, in, one);
    const std::vector<float> y = run(*table, Precision::I8, c, bad, one);
    const size_t half = y.size() / 2;
    bool all_nan = true;
    for (size_t i = 0; i < half; ++i) all_nan = all_nan && std::isnan(y[i]);
    CHECK(all_nan);
    CHECK(std::vector<float>(y.begin() + half, y.end()) == std::vector<float>(clean.begin() + half, clean.end()));
  }
}

TEST_CASE("conv2d_int8: the activation zero point is exact at full scale") {
  // Inputs at +-max everywhere and weights at +-127: the largest sums the kernels meet.
  ThreadPool one(1);
  const Case c{1, 5, 5, 64, 32, 3, 1, 1, false, false, false, 1.0f};
  uint32_t seed = 400;
  Inputs in = make_inputs(c, seed);
  for (size_t i = 0; i < in.x.size(); ++i) in.x[i] = (i % 3 == 0) ? -2.0f : 2.0f;
  for (size_t i = 0; i < in.q.size(); ++i) in.q[i] = (i % 5 == 0) ? -127 : 127;
  const std::vector<float> expected = run(reference_kernels(), Precision::I8, c, in, one);
  for (const KernelTable* table : lowp_tables()) CHECK(max_err(run(*table, Precision::I8, c, in, one), expected) <= 1e-6 * max_abs(expected));
}
