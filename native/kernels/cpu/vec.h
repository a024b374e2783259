// SIMD vocabulary of the per-ISA kernel files: a vector of FUSEDIFF_VEC floats written with
// GCC/Clang vector extensions, so one source compiles to AVX-512, AVX2 or SSE/NEON code
// depending on the flags its translation unit is built with (see CMakeLists.txt).
#pragma once
#include <cstdint>
#include <cstring>

namespace fusediff::kernels::FUSEDIFF_ISA {

constexpr int kVec = FUSEDIFF_VEC;
typedef float vec __attribute__((vector_size(kVec * sizeof(float))));
typedef int32_t ivec __attribute__((vector_size(kVec * sizeof(int32_t))));

inline vec load(const float* p) {
  vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(float* p, vec v) { std::memcpy(p, &v, sizeof(v)); }
inline vec splat(float s) { return vec{} + s; }
inline vec vmax(vec a, vec b) { return a > b ? a : b; }

inline float hsum(vec v) {
  float lanes[kVec];
  std::memcpy(lanes, &v, sizeof(lanes));
  float s = 0.0f;
  for (int i = 0; i < kVec; ++i) s += lanes[i];
  return s;
}
inline float hmax(vec v) {
  float lanes[kVec];
  std::memcpy(lanes, &v, sizeof(lanes));
  float m = lanes[0];
  for (int i = 1; i < kVec; ++i) m = lanes[i] > m ? lanes[i] : m;
  return m;
}

// e^x for x in [-87, 88] (inputs below are clamped: the result is then ~1e-38, which the
// callers, softmax and SiLU, treat as the 0 it almost is). Cody–Waite reduction
// x = k ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (truncation error
// below 5e-9 relative), 2^k assembled in the exponent bits. Within 2 ulp of expf.
inline vec vexp(vec x) {
  const vec lo = splat(-87.0f), hi = splat(88.0f);
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const vec round = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  const vec kf = (x * 1.44269504088896341f + round) - round;
  const vec r = (x - kf * 0.693359375f) - kf * -2.12194440e-4f;  // ln2 split in a short and a long part
  vec p = splat(1.0f / 5040);
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const ivec bits = (__builtin_convertvector(kf, ivec) + 127) << 23;
  vec scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// x * sigmoid(x) = x / (1 + e^-x).
inline vec vsilu(vec x) { return x / (1.0f + vexp(-x)); }

}  // namespace fusediff::kernels::FUSEDIFF_ISA
