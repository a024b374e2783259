// Philox-4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw, "Parallel
// Random Numbers: As Easy as 1, 2, 3" (SC'11), and a Gaussian transform on top of it.
//
// A counter-based generator is a pure function: (counter, key) -> four 32-bit words. Noise
// therefore never depends on which thread computes which element, on the thread count, on
// the batch an image is part of, or on the device: fusediff derives every Gaussian value
// from (seed of the image, stream, element index) alone:
//
//   counter = { q lo, q hi, stream lo, stream hi }   with q = element index / 4
//   key     = { seed lo, seed hi }
//   the four words -> two Box-Muller pairs -> four N(0, 1) values; element e takes value e % 4.
//
// `stream` numbers the draws of one sampling run (0: the initial latents, 1, 2, ...: the
// noise of later steps), so every draw is an independent stream of the same seed.
//
// The CUDA backend compiles this same header as device code (FUSEDIFF_HD), so both backends
// run one implementation; the integer part is exact everywhere, and the Box-Muller transform
// uses the platform's float64 log/sqrt/cos/sin (see cuda/README.md on bit-identity).
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define FUSEDIFF_HD __host__ __device__
#else
#define FUSEDIFF_HD
#endif

namespace fusediff::philox {

struct Block {
  uint32_t v[4];
};

constexpr uint32_t kMul0 = 0xD2511F53u;  // the round multipliers of Philox-4x32
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // the key schedule's Weyl increments (golden ratio, sqrt(3) - 1)
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

FUSEDIFF_HD inline void mulhilo(uint32_t a, uint32_t b, uint32_t* hi, uint32_t* lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  *lo = static_cast<uint32_t>(p);
}

// One Philox S-box round on the counter with round key (k0, k1).
FUSEDIFF_HD inline void round(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mulhilo(kMul0, c[0], &hi0, &lo0);
  mulhilo(kMul1, c[2], &hi1, &lo1);
  const uint32_t n0 = hi1 ^ c[1] ^ k0;
  const uint32_t n1 = lo1;
  const uint32_t n2 = hi0 ^ c[3] ^ k1;
  const uint32_t n3 = lo0;
  c[0] = n0, c[1] = n1, c[2] = n2, c[3] = n3;
}

// Philox-4x32 with `rounds` rounds (10 is the standard, crush-resistant choice); the key is
// bumped by the Weyl constants between rounds.
FUSEDIFF_HD inline Block philox4x32(const uint32_t counter[4], const uint32_t key[2], int rounds = 10) {
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < rounds; ++r) {
    if (r > 0) k0 += kWeyl0, k1 += kWeyl1;
    round(c, k0, k1);
  }
  return Block{{c[0], c[1], c[2], c[3]}};
}

// A 32-bit word as a uniform double strictly inside (0, 1): (w + 1/2) / 2^32.
FUSEDIFF_HD inline double to_open_unit(uint32_t w) { return (static_cast<double>(w) + 0.5) * (1.0 / 4294967296.0); }

// Box-Muller: (u1, u2) uniform on (0, 1) -> two independent N(0, 1) values, in double.
FUSEDIFF_HD inline void box_muller(uint32_t w1, uint32_t w2, double* z1, double* z2) {
  const double radius = std::sqrt(-2.0 * std::log(to_open_unit(w1)));
  const double angle = 6.283185307179586476925286766559 * to_open_unit(w2);
  *z1 = radius * std::cos(angle);
  *z2 = radius * std::sin(angle);
}

// The four Gaussian values of block q of (seed, stream).
FUSEDIFF_HD inline void normal4(uint64_t seed, uint64_t stream, uint64_t q, float out[4]) {
  const uint32_t counter[4] = {static_cast<uint32_t>(q), static_cast<uint32_t>(q >> 32), static_cast<uint32_t>(stream),
                               static_cast<uint32_t>(stream >> 32)};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const Block b = philox4x32(counter, key);
  double z[4];
  box_muller(b.v[0], b.v[1], &z[0], &z[1]);
  box_muller(b.v[2], b.v[3], &z[2], &z[3]);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<float>(z[i]);
}

// The Gaussian value of element `index` of (seed, stream).
FUSEDIFF_HD inline float normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  float z[4];
  normal4(seed, stream, index >> 2, z);
  return z[index & 3];
}

}  // namespace fusediff::philox
