// The threaded step kernels against their plain references (kernels/reference/step.cpp),
// with 1 and 2 threads (identical results required), and a few closed-form checks.
#include <cmath>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/step.h"
#include "tests/check.h"

using namespace fusediff;
using namespace fusediff::kernels;

namespace {

std::vector<float> rnd(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

std::vector<double> coefs(int64_t batch, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> d(-1.5, 1.5);
  std::vector<double> v(batch);
  for (double& x : v) x = d(gen);
  return v;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

struct Case {
  int64_t batch, channels, pixels;
  bool learned, guided, noise_tensor, philox, use_y;
  ClampMode clamp;
  NoiseScaleMode scale;
};

}  // namespace

TEST_CASE("affine_step: matches the reference for every feature, thread-count independent") {
  const Case cases[] = {
      {2, 3, 16, false, false, false, false, false, ClampMode::None, NoiseScaleMode::Constant},
      {2, 3, 16, false, false, true, false, false, ClampMode::Range, NoiseScaleMode::Constant},
      {3, 2, 37, false, false, false, true, true, ClampMode::None, NoiseScaleMode::Constant},
      {2, 3, 16, true, false, true, false, false, ClampMode::Range, NoiseScaleMode::ExpV},
      {2, 3, 16, true, false, true, false, false, ClampMode::None, NoiseScaleMode::SqrtV},
      {2, 4, 64, false, true, false, true, false, ClampMode::Range, NoiseScaleMode::Constant},
      {2, 3, 16, true, true, false, true, false, ClampMode::None, NoiseScaleMode::ExpV},
      {3, 3, 50, false, false, true, false, true, ClampMode::Dynamic, NoiseScaleMode::Constant},
      {1, 1, 4099, false, true, false, true, false, ClampMode::Dynamic, NoiseScaleMode::Constant},
  };
  uint32_t seed = 10;
  for (const Case& c : cases) {
    const int64_t n = c.batch * c.channels * c.pixels;
    const int64_t mc = c.learned ? 2 * c.channels : c.channels;
    const int64_t mb = c.guided ? 2 * c.batch : c.batch;
    const auto x = rnd(n, seed++);
    auto mdata = rnd(mb * mc * c.pixels, seed++);
    const auto zt = rnd(n, seed++);
    const auto y = rnd(n, seed++);
    const uint64_t seeds[3] = {1, 2, 3};
    AffineStepParams p;
    p.batch = c.batch, p.channels = c.channels, p.pixels = c.pixels;
    const auto ax = coefs(c.batch, seed++), am = coefs(c.batch, seed++), az = coefs(c.batch, seed++);
    const auto bx = coefs(c.batch, seed++), bm = coefs(c.batch, seed++), b0 = coefs(c.batch, seed++);
    const auto bz = coefs(c.batch, seed++), by = coefs(c.batch, seed++), e0 = coefs(c.batch, seed++),
               e1 = coefs(c.batch, seed++);
    p.ax = ax.data(), p.am = am.data(), p.bx = bx.data(), p.bm = bm.data(), p.b0 = b0.data(), p.bz = bz.data();
    if (c.noise_tensor || c.philox) p.az = az.data();
    if (c.use_y) p.by = by.data();
    p.e0 = e0.data(), p.e1 = e1.data();
    p.clamp = c.clamp, p.clamp_lo = -0.7, p.clamp_hi = 0.9, p.threshold_ratio = 0.9, p.threshold_max = 1.6;
    p.noise_scale = c.scale;
    if (c.scale == NoiseScaleMode::SqrtV)  // a variance must be >= 0
      for (int64_t b = 0; b < mb; ++b)
        for (int64_t i = c.channels * c.pixels; i < mc * c.pixels; ++i) mdata[b * mc * c.pixels + i] = std::fabs(mdata[b * mc * c.pixels + i]);
    ModelOutputView m;
    m.data = mdata.data(), m.m_channels = mc, m.guided = c.guided, m.guidance_scale = 3.5;
    NoiseSource z;
    if (c.noise_tensor) z.tensor = zt.data();
    if (c.philox) z.seeds = seeds, z.stream = 4;
    if (!z.present()) p.bz = nullptr;
    std::vector<float> ref(n), ref0(n), o1(n), x01(n), o2(n), x02(n);
    reference::affine_step(p, x.data(), m, z, y.data(), ref.data(), ref0.data());
    ThreadPool one(1), two(2);
    affine_step(p, x.data(), m, z, y.data(), o1.data(), x01.data(), one);
    affine_step(p, x.data(), m, z, y.data(), o2.data(), x02.data(), two);
    CHECK(o1 == o2);
    CHECK(x01 == x02);
    // Both evaluate each element in float64 and round once: equal up to the summation order.
    CHECK(max_diff(o1, ref) <= 1e-6);
    CHECK(max_diff(x01, ref0) <= 1e-6);
    // Without an x0 output the result is the same (dynamic thresholding uses a scratch buffer).
    std::vector<float> o3(n);
    affine_step(p, x.data(), m, z, y.data(), o3.data(), nullptr, two);
    CHECK(o3 == o1);
  }
}

TEST_CASE("affine_step: closed forms (DDIM-style combination, clamp, dynamic threshold)") {
  // out = 2x + 0.5·clamp(x + m, -1, 1) + 3z with one image of four values.
  const std::vector<float> x = {0.25f, -0.5f, 1.0f, 2.0f}, m = {0.5f, -1.0f, 0.25f, -4.0f}, z = {1, 0, -1, 0.5f};
  const double ax = 1, am = 1, bx = 2, b0 = 0.5, bz = 3;
  AffineStepParams p;
  p.batch = 1, p.channels = 1, p.pixels = 4;
  p.ax = &ax, p.am = &am, p.bx = &bx, p.b0 = &b0, p.bz = &bz;
  p.clamp = ClampMode::Range;
  ModelOutputView mv;
  mv.data = m.data(), mv.m_channels = 1;
  NoiseSource ns;
  ns.tensor = z.data();
  std::vector<float> out(4), x0(4);
  ThreadPool pool(2);
  affine_step(p, x.data(), mv, ns, nullptr, out.data(), x0.data(), pool);
  const float ex0[4] = {0.75f, -1.0f, 1.0f, -1.0f};
  for (int i = 0; i < 4; ++i) {
    CHECK_EQ(x0[i], ex0[i]);
    CHECK_NEAR(out[i], 2 * x[i] + 0.5 * ex0[i] + 3 * z[i], 1e-6);
  }
  // Dynamic thresholding with ratio 1: s = max |x̂0| = 4 (capped by max 3 -> s = 3).
  p.clamp = ClampMode::Dynamic, p.threshold_ratio = 1.0, p.threshold_max = 3.0;
  const double zero = 0;
  p.am = &zero;  // x̂0 = x
  const std::vector<float> x2 = {0.5f, -4.0f, 2.0f, 1.0f};
  affine_step(p, x2.data(), mv, ns, nullptr, out.data(), x0.data(), pool);
  const float ex2[4] = {0.5f / 3, -1.0f, 2.0f / 3, 1.0f / 3};
  for (int i = 0; i < 4; ++i) CHECK_NEAR(x0[i], ex2[i], 1e-7);
}

TEST_CASE("affine_step: missing inputs are refused") {
  const std::vector<float> x(4, 1.0f);
  const double one = 1;
  AffineStepParams p;
  p.batch = 1, p.channels = 1, p.pixels = 4;
  p.bz = &one;
  ModelOutputView m;
  std::vector<float> out(4);
  ThreadPool pool(1);
  CHECK_THROWS_WITH(affine_step(p, x.data(), m, NoiseSource{}, nullptr, out.data(), nullptr, pool), ErrorCode::Argument,
                    "needs noise");
  p.bz = nullptr, p.bm = &one;
  CHECK_THROWS_WITH(affine_step(p, x.data(), m, NoiseSource{}, nullptr, out.data(), nullptr, pool), ErrorCode::Argument,
                    "model output");
}

TEST_CASE("abs_quantile: equals the sorting reference, torch.quantile's interpolation") {
  for (int64_t n : {1, 2, 7, 1000, 4097}) {
    const auto v = rnd(n, static_cast<uint32_t>(n));
    for (double q : {0.0, 0.25, 0.5, 0.995, 1.0}) CHECK_NEAR(abs_quantile(v.data(), n, q), reference::abs_quantile(v.data(), n, q), 1e-12);
  }
  const std::vector<float> v = {-1, 2, -3, 4};  // |v| sorted: 1 2 3 4; q = 0.5 -> position 1.5 -> 2.5
  CHECK_NEAR(abs_quantile(v.data(), 4, 0.5), 2.5, 1e-12);
}

TEST_CASE("langevin_step: matches the reference, per-image and batch-mean step sizes") {
  for (bool batch_mean : {false, true})
    for (bool philox : {false, true}) {
      const int64_t batch = 3, channels = 2, pixels = 2600;  // two reduction blocks per image
      const int64_t n = batch * channels * pixels;
      const auto x = rnd(n, 1), m = rnd(n, 2), zt = rnd(n, 3);
      const uint64_t seeds[3] = {5, 6, 7};
      const std::vector<double> k = {-0.5, 2.0, 1.0}, alpha = {0.9, 1.0, 0.5};
      LangevinParams p;
      p.batch = batch, p.channels = channels, p.pixels = pixels, p.score_scale = k.data(), p.alpha = alpha.data(),
      p.snr = 0.16, p.batch_mean_norms = batch_mean;
      ModelOutputView mv;
      mv.data = m.data(), mv.m_channels = channels;
      NoiseSource z;
      if (philox) z.seeds = seeds, z.stream = 2;
      else z.tensor = zt.data();
      std::vector<float> ref(n), refm(n), o1(n), o1m(n), o2(n), o2m(n);
      std::vector<double> eps_ref(batch), eps1(batch), eps2(batch);
      reference::langevin_step(p, x.data(), mv, z, ref.data(), refm.data(), eps_ref.data());
      ThreadPool one(1), two(2);
      langevin_step(p, x.data(), mv, z, o1.data(), o1m.data(), eps1.data(), one);
      langevin_step(p, x.data(), mv, z, o2.data(), o2m.data(), eps2.data(), two);
      CHECK(o1 == o2);
      CHECK(eps1 == eps2);
      CHECK(max_diff(o1, ref) <= 1e-5);
      CHECK(max_diff(o1m, refm) <= 1e-5);
      for (int64_t b = 0; b < batch; ++b) CHECK_NEAR(eps1[b], eps_ref[b], 1e-9 * eps_ref[b]);
      if (batch_mean) CHECK_NEAR(eps1[0] / alpha[0], eps1[1] / alpha[1], 1e-12);
    }
}

TEST_CASE("to_uint8_hwc: diffusers' image conversion, alpha, grey to RGB") {
  // One 1x1 RGB image and the conversion (x/2 + 0.5) clamped, x255, rounded half to even.
  const std::vector<float> x = {-1.0f, 0.0f, 2.0f};  // -> 0, 127.5 -> 128 (even), 255
  std::vector<uint8_t> out(4);
  ThreadPool pool(1);
  to_uint8_hwc(x.data(), 1, 3, 1, {0, 1, 2, -1}, 0.5f, 0.5f, out.data(), pool);
  CHECK_EQ(int(out[0]), 0);
  CHECK_EQ(int(out[1]), 128);
  CHECK_EQ(int(out[2]), 255);
  CHECK_EQ(int(out[3]), 255);
  const std::vector<float> g = {0.25f, NAN};
  std::vector<uint8_t> rgb(6);
  to_uint8_hwc(g.data(), 1, 1, 2, {0, 0, 0}, 1.0f, 0.0f, rgb.data(), pool);
  CHECK_EQ(int(rgb[0]), 64);  // 63.75 -> 64
  CHECK_EQ(int(rgb[2]), 64);
  CHECK_EQ(int(rgb[3]), 0);  // NaN -> 0
}

TEST_CASE("concat_batch: parts one after the other") {
  const std::vector<float> a = {1, 2}, b = {3, 4, 5};
  std::vector<float> out(5);
  ThreadPool pool(1);
  concat_batch({a.data(), b.data()}, {2, 3}, out.data(), pool);
  CHECK(out == std::vector<float>({1, 2, 3, 4, 5}));
}
