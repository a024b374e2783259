// Every fast kernel against its reference: all kernel tables available on this CPU, over
// shapes that exercise tiles, tails and borders (widths below and around the register tile,
// channel counts that are not multiples of 16, stride 2 with both paddings, 1x1 and 3x3,
// every epilogue term), and with 1 and 2 threads (the results must be identical).
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/cpu_features.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "kernels/elementwise.h"
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

std::vector<const KernelTable*> fast_tables() {
  std::vector<const KernelTable*> tables{&kernels_by_name("generic")};
  if (cpu_features().avx2) tables.push_back(&kernels_by_name("avx2"));
  if (cpu_features().avx512) tables.push_back(&kernels_by_name("avx512"));
  return tables;
}

struct ConvCase {
  int batch, h, w, in_c, out_c, kernel, stride, pad;
  bool bias, batch_bias, residual;
  float scale;
  bool circular = false;
  // A folded resampling: h x w is the conv's input, x holds (h / 2) x (w / 2) (upsampling)
  // or 2h x 2w (average pooling) pixels.
  Conv2dParams::InputResample resample = Conv2dParams::InputResample::None;
};

size_t input_floats(const ConvCase& c) {
  const size_t pixels = static_cast<size_t>(c.batch) * c.h * c.w;
  if (c.resample == Conv2dParams::InputResample::Upsample2x) return pixels / 4 * c.in_c;
  if (c.resample == Conv2dParams::InputResample::AvgPool2x) return pixels * 4 * c.in_c;
  return pixels * c.in_c;
}

constexpr auto kUp = Conv2dParams::InputResample::Upsample2x;
constexpr auto kPool = Conv2dParams::InputResample::AvgPool2x;

std::vector<float> run_conv(const KernelTable& table, const ConvCase& c, ThreadPool& pool, const std::vector<float>& x,
                            const std::vector<float>& w, const std::vector<float>& b, const std::vector<float>& bb,
                            const std::vector<float>& res, Conv2dParams* params_out,
                            ConvAlgorithm algorithm = ConvAlgorithm::Direct) {
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
  p.input_resample = c.resample;
  *params_out = p;
  PackedConv packed;
  table.pack_conv(w.data(), c.out_c, c.in_c, c.kernel, algorithm, &packed);
  ConvEpilogue e;
  if (c.bias) e.bias = b.data();
  if (c.batch_bias) e.batch_bias = bb.data(), e.batch_bias_stride = c.out_c + 5;
  if (c.residual) e.residual = res.data();
  e.output_scale = c.scale;
  std::vector<float> y(static_cast<size_t>(p.batch) * p.out_h * p.out_w * p.out_c, NAN);
  table.conv2d(p, x.data(), packed, e, y.data(), pool);
  return y;
}

}  // namespace

TEST_CASE("conv2d: every fast table matches the reference, thread-count independent") {
  const std::vector<ConvCase> cases = {
      {1, 8, 8, 16, 16, 3, 1, 1, true, false, false, 1.0f},
      {2, 5, 13, 3, 20, 3, 1, 1, true, true, true, 0.5f},     // odd sizes, channel tail
      {1, 1, 1, 7, 33, 3, 1, 1, true, false, false, 1.0f},    // all border
      {1, 2, 2, 5, 16, 3, 2, 0, true, false, false, 1.0f},    // window never fully inside
      {2, 16, 12, 24, 40, 3, 2, 1, true, true, false, 1.0f},  // stride 2, pad 1
      {1, 16, 16, 32, 32, 3, 2, 0, true, false, true, 1.0f},  // stride 2, pad 0 (asymmetric)
      {3, 6, 17, 48, 64, 1, 1, 0, true, false, true, 0.7f},   // 1x1 with residual
      {1, 1, 9, 64, 96, 1, 1, 0, true, false, false, 1.0f},   // a linear layer over 9 rows
      {1, 32, 32, 64, 48, 3, 1, 1, true, true, true, 1.0f},
      {2, 9, 12, 20, 36, 3, 1, 1, true, true, false, 1.0f, true},  // circular padding
      {1, 16, 8, 16, 16, 3, 2, 1, true, false, false, 1.0f, true},  // circular, stride 2
      {1, 1, 3, 8, 16, 3, 1, 1, true, false, false, 1.0f, true},    // wraps onto itself
      {2, 5, 7, 8, 20, 1, 1, 1, true, false, true, 1.0f, true},     // padded 1x1, circular (row cache, kernel 1)
      {2, 8, 12, 24, 40, 3, 1, 1, true, true, true, 1.0f, false, kUp},  // folded 2x upsampling (Upsample2D's conv)
      {1, 6, 10, 16, 16, 3, 1, 1, true, false, false, 1.0f, true, kUp},  // upsampled, circular
      {1, 4, 14, 8, 20, 1, 1, 0, true, false, false, 1.0f, false, kUp},  // upsampled 1x1 (row cache, kernel 1)
      {2, 5, 7, 24, 40, 3, 1, 1, true, true, true, 1.0f, false, kPool},  // folded 2x2 average (ResNet down block)
      {1, 3, 4, 16, 16, 3, 1, 1, true, false, false, 1.0f, true, kPool},  // averaged, circular
      // Shapes for the Winograd path (3x3, stride 1, channels in multiples of 16), which every
      // case it applies to also runs:
      {2, 5, 13, 32, 48, 3, 1, 1, true, true, true, 0.5f},              // odd sizes: half tiles
      {1, 1, 1, 16, 16, 3, 1, 1, true, false, false, 1.0f},             // one pixel
      {2, 7, 9, 32, 80, 3, 1, 1, true, false, true, 1.0f, true},        // circular, odd, 4 + 1 panels
      {1, 16, 16, 256, 64, 3, 1, 1, true, true, true, 1.0f},            // 3 tile blocks per image
      {1, 10, 10, 512, 32, 3, 1, 1, true, false, false, 1.0f},          // 512 channels: short blocks
      {2, 6, 10, 48, 32, 3, 1, 1, true, true, false, 1.0f, true, kUp},  // upsampled, circular
      {2, 6, 8, 32, 64, 3, 1, 1, true, false, true, 1.0f, false, kPool},  // averaged
  };
  ThreadPool one(1), two(2);
  uint32_t seed = 1;
  for (const ConvCase& c : cases) {
    const auto x = random_vector(input_floats(c), seed++);
    const auto w = random_vector(static_cast<size_t>(c.out_c) * c.in_c * c.kernel * c.kernel, seed++, 0.2f);
    const auto b = random_vector(c.out_c, seed++);
    const auto bb = random_vector(static_cast<size_t>(c.batch) * (c.out_c + 5), seed++);
    Conv2dParams p;
    std::vector<float> probe = run_conv(reference_kernels(), c, one, x, w, b, bb, {}, &p);
    const auto res = random_vector(probe.size(), seed++);
    const std::vector<float> expected = run_conv(reference_kernels(), c, one, x, w, b, bb, res, &p);
    double max_abs = 0;
    for (float v : expected) max_abs = std::fmax(max_abs, std::fabs(v));
    std::vector<ConvAlgorithm> algorithms{ConvAlgorithm::Direct};
    if (winograd_applies(c.kernel, c.stride, c.pad, c.in_c, c.out_c)) algorithms.push_back(ConvAlgorithm::Winograd2x2);
    for (const KernelTable* table : fast_tables())
      for (ConvAlgorithm algorithm : algorithms) {
        const std::vector<float> y1 = run_conv(*table, c, one, x, w, b, bb, res, &p, algorithm);
        const std::vector<float> y2 = run_conv(*table, c, two, x, w, b, bb, res, &p, algorithm);
        double err = 0;
        for (size_t i = 0; i < expected.size(); ++i) err = std::fmax(err, std::fabs(y1[i] - expected[i]));
        // float32 sums of up to 9 x 512 products in a different order (Winograd: of transformed
        // terms): a few ulps of the magnitude.
        CHECK(err <= 1e-5 * (1 + max_abs));
        CHECK(y1 == y2);
        if (err > 1e-5 * (1 + max_abs) || y1 != y2)
          std::fprintf(stderr, "  (table %s, %s, case %dx%dx%d -> %d, error %g of %g)\n", table->name,
                       algorithm == ConvAlgorithm::Direct ? "direct" : "winograd", c.h, c.w, c.in_c, c.out_c, err, max_abs);
      }
  }
}

TEST_CASE("attention: every fast table matches the reference, thread-count independent") {
  ThreadPool one(1), two(2);
  // Head sizes below, at and above a vector; token counts that leave partial score tiles, and
  // 2,100 tokens: three steps of the streaming softmax (key blocks of about 1,024), the last short.
  const AttentionParams cases[] = {{2, 70, 24, 3},  {1, 256, 64, 1}, {1, 5, 8, 1},    {2, 64, 128, 2},
                                   {1, 100, 40, 2}, {1, 131, 96, 3}, {1, 67, 256, 1}, {1, 2100, 16, 2}};
  uint32_t seed = 42;
  for (const AttentionParams& p : cases) {
    const auto qkv = random_vector(static_cast<size_t>(p.batch) * p.tokens * 3 * p.channels, seed++, 2.0f);
    std::vector<float> expected(static_cast<size_t>(p.batch) * p.tokens * p.channels);
    reference_kernels().attention(p, qkv.data(), expected.data(), nullptr, one);
    for (const KernelTable* table : fast_tables()) {
      std::vector<float> scratch(static_cast<size_t>(table->attention_scratch_floats(p)));
      std::vector<float> y1(expected.size()), y2(expected.size());
      table->attention(p, qkv.data(), y1.data(), scratch.data(), one);
      table->attention(p, qkv.data(), y2.data(), scratch.data(), two);
      double err = 0;
      for (size_t i = 0; i < y1.size(); ++i) err = std::fmax(err, std::fabs(y1[i] - expected[i]));
      CHECK(err <= 2e-6);
      CHECK(y1 == y2);
    }
  }
  // Rows of the softmax sum to one: with V = 1 everywhere the output is 1, on every table, also
  // where scores are large (q and k up to +-8, d = 8: scores up to 181 before the max shift).
  AttentionParams p{2, 300, 24, 3};
  std::vector<float> ones = random_vector(static_cast<size_t>(p.batch) * p.tokens * 3 * p.channels, 42, 8.0f);
  for (int i = 0; i < p.batch * p.tokens; ++i)
    for (int c = 0; c < p.channels; ++c) ones[static_cast<size_t>(i) * 3 * p.channels + 2 * p.channels + c] = 1.0f;
  std::vector<const KernelTable*> tables = fast_tables();
  tables.push_back(&reference_kernels());
  for (const KernelTable* table : tables) {
    std::vector<float> scratch(static_cast<size_t>(table->attention_scratch_floats(p)));
    std::vector<float> y(static_cast<size_t>(p.batch) * p.tokens * p.channels);
    table->attention(p, ones.data(), y.data(), scratch.data(), two);
    for (float v : y) CHECK_NEAR(v, 1.0f, 1e-5f);
  }
}

TEST_CASE("attention: the streaming softmax rescales earlier key blocks when a later one holds the maximum") {
  ThreadPool two(2);
  // Scores rise along the keys (k_j = 12 j / tokens in every channel, q = 1, d = 8: from 0 to ~34), so each
  // key block raises the running maximum and every earlier block's sums must shrink by exp(old - new max).
  AttentionParams p{1, 2100, 8, 1};
  std::vector<float> qkv = random_vector(static_cast<size_t>(p.tokens) * 3 * p.channels, 7, 1.0f);
  for (int j = 0; j < p.tokens; ++j)
    for (int c = 0; c < p.channels; ++c) {
      qkv[static_cast<size_t>(j) * 3 * p.channels + c] = 1.0f;
      qkv[static_cast<size_t>(j) * 3 * p.channels + p.channels + c] = 12.0f * j / p.tokens;
    }
  std::vector<float> expected(static_cast<size_t>(p.tokens) * p.channels);
  reference_kernels().attention(p, qkv.data(), expected.data(), nullptr, two);
  for (const KernelTable* table : fast_tables()) {
    std::vector<float> scratch(static_cast<size_t>(table->attention_scratch_floats(p)));
    std::vector<float> y(expected.size());
    table->attention(p, qkv.data(), y.data(), scratch.data(), two);
    double err = 0;
    for (size_t i = 0; i < y.size(); ++i) err = std::fmax(err, std::fabs(y[i] - expected[i]));
    CHECK(err <= 2e-6);
  }
}

TEST_CASE("group_norm: every fast table matches the reference, thread-count independent") {
  ThreadPool one(1), two(2);
  struct Case {
    int batch;
    int64_t pixels;
    int channels, groups;
    bool silu, scale_shift;
  };
  const Case cases[] = {{2, 50, 12, 3, true, false}, {1, 1024, 128, 32, true, true}, {3, 7, 6, 2, false, true},
                        {1, 16, 96, 32, false, false}, {2, 1000, 64, 16, true, false}};
  uint32_t seed = 5;
  for (const Case& c : cases) {
    GroupNormParams p;
    p.batch = c.batch, p.pixels = c.pixels, p.channels = c.channels, p.groups = c.groups, p.silu = c.silu;
    const auto gamma = random_vector(c.channels, seed++), beta = random_vector(c.channels, seed++);
    const auto ss = random_vector(static_cast<size_t>(c.batch) * (2 * c.channels + 3), seed++);
    p.gamma = gamma.data(), p.beta = beta.data();
    if (c.scale_shift) p.scale_shift = ss.data(), p.scale_shift_stride = 2 * c.channels + 3;
    auto x = random_vector(static_cast<size_t>(c.batch) * c.pixels * c.channels, seed++, 2.0f);
    for (float& v : x) v += 30.0f;  // an offset mean must not cost precision
    std::vector<float> expected(x.size());
    reference_kernels().group_norm(p, x.data(), expected.data(), nullptr, one);
    for (const KernelTable* table : fast_tables()) {
      std::vector<float> y1(x.size()), y2(x.size());
      std::vector<float> scratch(static_cast<size_t>(table->group_norm_scratch_floats(p)));
      table->group_norm(p, x.data(), y1.data(), scratch.data(), one);
      table->group_norm(p, x.data(), y2.data(), scratch.data(), two);
      double err = 0;
      for (size_t i = 0; i < y1.size(); ++i) err = std::fmax(err, std::fabs(y1[i] - expected[i]));
      CHECK(err <= 5e-6);
      CHECK(y1 == y2);
    }
  }
}

TEST_CASE("group_norm: normalises each (image, group) to mean 0, variance 1, on every table") {
  GroupNormParams p;
  p.batch = 2, p.pixels = 300, p.channels = 12, p.groups = 3, p.eps = 0.0f;
  std::vector<float> gamma(12, 1.0f), beta(12, 0.0f);
  p.gamma = gamma.data();
  p.beta = beta.data();
  auto x = random_vector(static_cast<size_t>(p.batch) * p.pixels * p.channels, 7, 3.0f);
  // A mean 58 standard deviations from 0: a sum of squares about 0 would lose the variance to
  // cancellation in float (the fast tables' statistics are shifted sums, see group_norm.cpp).
  for (float& v : x) v += 100.0f;
  std::vector<const KernelTable*> tables = fast_tables();
  tables.push_back(&reference_kernels());
  ThreadPool two(2);
  for (const KernelTable* table : tables) {
    std::vector<float> y(x.size());
    std::vector<float> scratch(static_cast<size_t>(std::max<int64_t>(1, table->group_norm_scratch_floats(p))));
    table->group_norm(p, x.data(), y.data(), scratch.data(), two);
    for (int n = 0; n < p.batch; ++n)
      for (int g = 0; g < p.groups; ++g) {
        double s = 0, s2 = 0;
        for (int pix = 0; pix < p.pixels; ++pix)
          for (int c = 0; c < 4; ++c) {
            const double v = y[(static_cast<size_t>(n) * p.pixels + pix) * p.channels + g * 4 + c];
            s += v;
            s2 += v * v;
          }
        CHECK_NEAR(s / (4 * p.pixels), 0.0, 1e-5);
        CHECK_NEAR(s2 / (4 * p.pixels), 1.0, 1e-4);
      }
  }
}

TEST_CASE("resampling: nearest x2 then 2x2 average pooling is the identity") {
  const int b = 2, h = 3, w = 5, c = 7;
  const auto x = random_vector(static_cast<size_t>(b) * h * w * c, 9);
  std::vector<float> up(x.size() * 4), down(x.size());
  ThreadPool two(2);
  upsample_nearest2x(x.data(), b, h, w, c, up.data(), two);
  avg_pool2x2(up.data(), b, 2 * h, 2 * w, c, down.data(), two);
  CHECK(down == x);
}

TEST_CASE("conv2d: circular padding equals a zero-padded conv of the wrapped-around input") {
  // Build the input extended by one wrapped pixel on every side, convolve it without padding,
  // and compare with the circular conv of the original.
  const int h = 6, w = 7, ci = 5, co = 16;
  const auto x = random_vector(static_cast<size_t>(h) * w * ci, 77);
  const auto wt = random_vector(static_cast<size_t>(co) * ci * 9, 78, 0.3f);
  std::vector<float> big(static_cast<size_t>(h + 2) * (w + 2) * ci);
  for (int y = 0; y < h + 2; ++y)
    for (int xx = 0; xx < w + 2; ++xx)
      for (int c = 0; c < ci; ++c)
        big[(static_cast<size_t>(y) * (w + 2) + xx) * ci + c] = x[(static_cast<size_t>((y + h - 1) % h) * w + (xx + w - 1) % w) * ci + c];
  ThreadPool one(1);
  for (const KernelTable* table : {&reference_kernels(), &kernels_by_name("generic")}) {
    PackedConv packed;
    table->pack_conv(wt.data(), co, ci, 3, ConvAlgorithm::Direct, &packed);
    Conv2dParams p;
    p.in_h = h, p.in_w = w, p.in_c = ci, p.out_h = h, p.out_w = w, p.out_c = co, p.pad_top = p.pad_left = 1;
    p.circular = true;
    std::vector<float> a(static_cast<size_t>(h) * w * co), b(a.size());
    table->conv2d(p, x.data(), packed, ConvEpilogue{}, a.data(), one);
    Conv2dParams q = p;
    q.in_h = h + 2, q.in_w = w + 2, q.pad_top = q.pad_left = 0, q.circular = false;
    table->conv2d(q, big.data(), packed, ConvEpilogue{}, b.data(), one);
    for (size_t i = 0; i < a.size(); ++i) CHECK_NEAR(a[i], b[i], 1e-5f);
  }
}

TEST_CASE("conv2d: a folded resampling equals the conv of the resampled input") {
  // The reference's definition of Conv2dParams::input_resample (the fast tables are checked
  // against the reference above): bit for bit the conv of upsample_nearest2x's or
  // avg_pool2x2's output, which hold the same values, summed in the same order.
  const int b = 2, h = 4, w = 6, ci = 6, co = 16;
  const auto x = random_vector(static_cast<size_t>(b) * h * w * ci, 81);
  const auto wt = random_vector(static_cast<size_t>(co) * ci * 9, 82, 0.3f);
  std::vector<float> up(x.size() * 4), down(x.size() / 4);
  ThreadPool one(1);
  upsample_nearest2x(x.data(), b, h, w, ci, up.data(), one);
  avg_pool2x2(x.data(), b, h, w, ci, down.data(), one);
  PackedConv packed;
  reference_kernels().pack_conv(wt.data(), co, ci, 3, ConvAlgorithm::Direct, &packed);
  struct Fold {
    Conv2dParams::InputResample kind;
    int h, w;  // the conv's input
    const std::vector<float>& resampled;
  };
  for (const Fold& f : {Fold{kUp, 2 * h, 2 * w, up}, Fold{kPool, h / 2, w / 2, down}})
    for (bool circular : {false, true}) {
      Conv2dParams p;
      p.batch = b, p.in_h = p.out_h = f.h, p.in_w = p.out_w = f.w, p.in_c = ci, p.out_c = co;
      p.pad_top = p.pad_left = 1;
      p.circular = circular;
      std::vector<float> folded(static_cast<size_t>(b) * f.h * f.w * co), separate(folded.size());
      reference_kernels().conv2d(p, f.resampled.data(), packed, ConvEpilogue{}, separate.data(), one);
      p.input_resample = f.kind;
      reference_kernels().conv2d(p, x.data(), packed, ConvEpilogue{}, folded.data(), one);
      CHECK(folded == separate);
    }
}

TEST_CASE("conv2d: the low-precision convolutions refuse a folded resampling") {
  Conv2dParams p;
  p.in_h = p.in_w = p.out_h = p.out_w = 4, p.in_c = 4, p.out_c = 16, p.pad_top = p.pad_left = 1;
  p.input_resample = kUp;
  const std::vector<float> x(4 * 4 * 4, 0.5f), wt(16 * 4 * 9, 0.1f), scale(16, 0.01f);
  std::vector<int8_t> q(wt.size(), 1);
  std::vector<float> y(4 * 4 * 16);
  ThreadPool one(1);
  std::vector<const KernelTable*> tables = fast_tables();
  tables.push_back(&reference_kernels());
  for (const KernelTable* table : tables) {
    PackedConv i8, bf16;
    table->pack_conv_int8(q.data(), scale.data(), 16, 4, 3, &i8);
    table->pack_conv_bf16(wt.data(), 16, 4, 3, &bf16);
    AlignedBuffer scratch(static_cast<size_t>(std::max<int64_t>(64, table->lowp_conv_scratch_bytes(p, Precision::I8))));
    CHECK_THROWS_WITH(table->conv2d_int8(p, x.data(), i8, ConvEpilogue{}, y.data(), scratch.data(), one), ErrorCode::Internal,
                      "resampling");
    CHECK_THROWS_WITH(table->conv2d_bf16(p, x.data(), bf16, ConvEpilogue{}, y.data(), scratch.data(), one), ErrorCode::Internal,
                      "resampling");
  }
}
