// Philox-4x32-10 against the published known-answer vectors (Random123's kat_vectors, the
// three "philox4x32 10" lines), and the Gaussian transform's basic properties.
#include <cmath>
#include <vector>

#include "core/philox.h"
#include "core/thread_pool.h"
#include "kernels/step.h"
#include "tests/check.h"

using namespace fusediff;

TEST_CASE("philox: Random123 known-answer vectors for philox4x32 10") {
  struct Kat {
    uint32_t ctr[4];
    uint32_t key[2];
    uint32_t expected[4];
  };
  const Kat kats[] = {
      {{0x00000000, 0x00000000, 0x00000000, 0x00000000}, {0x00000000, 0x00000000}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    const philox::Block b = philox::philox4x32(k.ctr, k.key, 10);
    for (int i = 0; i < 4; ++i) CHECK_EQ(b.v[i], k.expected[i]);
  }
}

TEST_CASE("philox: uniforms stay strictly inside (0, 1)") {
  CHECK(philox::to_open_unit(0u) > 0.0);
  CHECK(philox::to_open_unit(0xffffffffu) < 1.0);
}

TEST_CASE("philox_normal: moments of N(0,1), independent streams and seeds") {
  const int64_t n = 1 << 18;
  std::vector<float> z(n);
  const uint64_t seed = 12345;
  ThreadPool two(2);
  kernels::philox_normal(z.data(), 1, n, &seed, 0, two);
  double s1 = 0, s2 = 0, s4 = 0;
  for (float v : z) s1 += v, s2 += double(v) * v, s4 += double(v) * v * v * v;
  const double mean = s1 / n, var = s2 / n - mean * mean, m4 = s4 / n;
  // Standard errors for n = 2^18: mean 0.002, variance 0.0028, fourth moment ~0.019; 5 of each.
  CHECK_NEAR(mean, 0.0, 0.01);
  CHECK_NEAR(var, 1.0, 0.014);
  CHECK_NEAR(m4, 3.0, 0.1);
  // Another stream / another seed: uncorrelated with the first.
  std::vector<float> w(n), u(n);
  kernels::philox_normal(w.data(), 1, n, &seed, 1, two);
  const uint64_t seed2 = 12346;
  kernels::philox_normal(u.data(), 1, n, &seed2, 0, two);
  double c1 = 0, c2 = 0;
  for (int64_t i = 0; i < n; ++i) c1 += double(z[i]) * w[i], c2 += double(z[i]) * u[i];
  CHECK_NEAR(c1 / n, 0.0, 0.01);
  CHECK_NEAR(c2 / n, 0.0, 0.01);
}

TEST_CASE("philox_normal: a pure function of (seed, stream, index): threads, batch position, reference") {
  const int64_t per_item = 1003;  // not a multiple of 4
  const uint64_t seeds[3] = {7, 99, 1ull << 40};
  std::vector<float> one(3 * per_item), two(3 * per_item), ref(3 * per_item), alone(per_item);
  ThreadPool p1(1), p2(2);
  kernels::philox_normal(one.data(), 3, per_item, seeds, 5, p1);
  kernels::philox_normal(two.data(), 3, per_item, seeds, 5, p2);
  kernels::reference::philox_normal(ref.data(), 3, per_item, seeds, 5);
  CHECK(one == two);
  CHECK(one == ref);
  // Image 1 generated alone equals image 1 of the batch.
  kernels::philox_normal(alone.data(), 1, per_item, &seeds[1], 5, p2);
  CHECK(std::vector<float>(one.begin() + per_item, one.begin() + 2 * per_item) == alone);
}
