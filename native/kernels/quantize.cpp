// Weight quantization and bfloat16 rounding shared by every kernel table (kernels.h).
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"

namespace fusediff::kernels {

// scale = max|w| / 127 per output channel; q = round(w / scale), half away from zero,
// clamped to [-127, 127] (-128 is never used, so |q| <= 127 and products fit the exact
// int16 pair sums of the AVX2 path). A channel of zeros gets scale 1 and q = 0.
void quantize_per_channel(const float* w, int out_c, int64_t per_channel, int8_t* q, float* scale) {
  for (int co = 0; co < out_c; ++co) {
    const float* row = w + co * per_channel;
    float m = 0.0f;
    for (int64_t i = 0; i < per_channel; ++i) m = std::fmax(m, std::fabs(row[i]));
    const float s = m > 0.0f ? m / 127.0f : 1.0f;
    scale[co] = s;
    for (int64_t i = 0; i < per_channel; ++i) {
      const float v = std::round(row[i] / s);
      q[co * per_channel + i] = static_cast<int8_t>(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    }
  }
}

uint16_t float_to_bf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace fusediff::kernels
