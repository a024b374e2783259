// The 4-byte dot products the low-precision convolutions (conv2d_lowp.h) are built on, one
// definition per instruction set, chosen by the flags this translation unit is compiled with
// (CMakeLists.txt: lowp variants generic, avx2, avx512, avx512_vnni, avx512_bf16).
//
// Both element types come in groups of four bytes along K (the input channels of one tap):
//   int8:  4 x 8-bit  activations against 4 x int8 weights, summed into one int32 lane;
//   bf16:  2 x bf16   activations against 2 x bf16 weights, summed into one float32 lane.
// One accumulator register holds kLanes output channels; its weights are kLanes x 4 bytes,
// laid out [lane][4 bytes] (the [N/16][K/4][16][4] panels of the packers). The activation
// group is broadcast to every lane.
//
// Per set:
//   Int8::kZero   the stored byte that means activation 0: 128 where the instruction is
//                 vpdpbusd (unsigned x signed: bytes are q + 128, and the kernel subtracts
//                 128 * sum(w) per output channel in the epilogue), 0 elsewhere (bytes are
//                 the signed q).
//   Int8::dot     exact int32 sum of four products, never saturating:
//                 - AVX-512 VNNI: vpdpbusd.
//                 - AVX-512BW / AVX2 without VNNI: vpmaddubsw(|w|, x * sign(w)), then
//                   vpmaddwd with ones. |w| <= 127 and |x| <= 127, so a pair sum is at most
//                   2 * 127 * 127 = 32258 < 32767: the int16 step is exact.
//                 - generic: plain int32 multiply-adds.
//   Bf16::dot     acc + x0 * w0 + x1 * w1: vdpbf16ps with AVX-512 BF16; elsewhere both
//                 bf16 values are widened to float32 (a shift) and multiplied there: the
//                 product of two bf16 is exact in float32, so the only roundings are the two
//                 additions, as in vdpbf16ps (which additionally flushes denormals).
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA::lowp {

inline uint32_t load_group(const uint32_t* p) { return *p; }

#if defined(__AVX512BW__)
constexpr int kLanes = 16;
struct Int8 {
  using Acc = __m512i;
  static constexpr uint8_t kZero = 
#if defined(__AVX512VNNI__)
      128;
#else
      0;
#endif
#if defined(__AVX512VNNI__)
  using W = __m512i;
  static W weights(const uint32_t* w) { return _mm512_loadu_si512(w); }
  static Acc dot(Acc acc, uint32_t x, const W& w) { return _mm512_dpbusd_epi32(acc, _mm512_set1_epi32(static_cast<int>(x)), w); }
#else
  struct W {
    __m512i abs;
    __mmask64 negative;
  };
  static W weights(const uint32_t* w) {
    const __m512i v = _mm512_loadu_si512(w);
    return {_mm512_abs_epi8(v), _mm512_movepi8_mask(v)};
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    const __m512i xv = _mm512_set1_epi32(static_cast<int>(x));
    const __m512i signed_x = _mm512_mask_sub_epi8(xv, w.negative, _mm512_setzero_si512(), xv);
    const __m512i pairs = _mm512_maddubs_epi16(w.abs, signed_x);
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
  }
#endif
  static Acc zero() { return _mm512_setzero_si512(); }
};
struct Bf16 {
  using Acc = __m512;
  static Acc zero() { return _mm512_setzero_ps(); }
#if defined(__AVX512BF16__)
  using W = __m512bh;
  static W weights(const uint32_t* w) { return (__m512bh)_mm512_loadu_si512(w); }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_set1_epi32(static_cast<int>(x)), w);
  }
#else
  struct W {
    __m512 lo, hi;  // the even (first) and odd (second) bf16 of each lane, as float32
  };
  static W weights(const uint32_t* w) {
    typedef uint32_t u32x16 __attribute__((vector_size(64)));
    u32x16 v;
    std::memcpy(&v, w, sizeof(v));
    const u32x16 lo = v << 16, hi = v & 0xffff0000u;  // (a plain shift: GCC 12 warns on _mm512_slli_epi32)
    return {(__m512)lo, (__m512)hi};
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    const uint32_t lo = x << 16, hi = x & 0xffff0000u;
    float xl, xh;
    std::memcpy(&xl, &lo, 4);
    std::memcpy(&xh, &hi, 4);
    acc = _mm512_add_ps(acc, _mm512_mul_ps(w.lo, _mm512_set1_ps(xl)));
    return _mm512_add_ps(acc, _mm512_mul_ps(w.hi, _mm512_set1_ps(xh)));
  }
#endif
};

#elif defined(__AVX2__)
constexpr int kLanes = 8;
struct Int8 {
  using Acc = __m256i;
  static constexpr uint8_t kZero = 0;
  struct W {
    __m256i abs, sign;
  };
  static W weights(const uint32_t* w) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    return {_mm256_abs_epi8(v), v};
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    const __m256i signed_x = _mm256_sign_epi8(_mm256_set1_epi32(static_cast<int>(x)), w.sign);
    const __m256i pairs = _mm256_maddubs_epi16(w.abs, signed_x);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static Acc zero() { return _mm256_setzero_si256(); }
};
struct Bf16 {
  using Acc = __m256;
  struct W {
    __m256 lo, hi;
  };
  static W weights(const uint32_t* w) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    return {_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)),
            _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))))};
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    const uint32_t lo = x << 16, hi = x & 0xffff0000u;
    float xl, xh;
    std::memcpy(&xl, &lo, 4);
    std::memcpy(&xh, &hi, 4);
    acc = _mm256_add_ps(acc, _mm256_mul_ps(w.lo, _mm256_set1_ps(xl)));
    return _mm256_add_ps(acc, _mm256_mul_ps(w.hi, _mm256_set1_ps(xh)));
  }
  static Acc zero() { return _mm256_setzero_ps(); }
};

#else  // portable: GCC/Clang vector extensions, any target
constexpr int kLanes = kVec;
typedef uint32_t uvec __attribute__((vector_size(kLanes * sizeof(uint32_t))));
struct Int8 {
  using Acc = ivec;
  static constexpr uint8_t kZero = 0;
  struct W {
    ivec b[4];  // byte j of every lane, sign-extended
  };
  static W weights(const uint32_t* w) {
    W r;
    for (int j = 0; j < 4; ++j)
      for (int i = 0; i < kLanes; ++i) r.b[j][i] = static_cast<int8_t>(w[i] >> (8 * j));
    return r;
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    for (int j = 0; j < 4; ++j) acc += w.b[j] * static_cast<int32_t>(static_cast<int8_t>(x >> (8 * j)));
    return acc;
  }
  static Acc zero() { return ivec{}; }
};
struct Bf16 {
  using Acc = vec;
  struct W {
    vec lo, hi;
  };
  static W weights(const uint32_t* w) {
    uvec v;
    std::memcpy(&v, w, sizeof(v));
    const uvec lo = v << 16, hi = v & 0xffff0000u;
    W r;
    std::memcpy(&r.lo, &lo, sizeof(lo));
    std::memcpy(&r.hi, &hi, sizeof(hi));
    return r;
  }
  static Acc dot(Acc acc, uint32_t x, const W& w) {
    const uint32_t lo = x << 16, hi = x & 0xffff0000u;
    float xl, xh;
    std::memcpy(&xl, &lo, 4);
    std::memcpy(&xh, &hi, 4);
    acc = acc + w.lo * xl;
    return acc + w.hi * xh;
  }
  static Acc zero() { return vec{}; }
};
#endif

}  // namespace fusediff::kernels::FUSEDIFF_ISA::lowp
