// BF16 convolution: bfloat16 inputs and weights, float32 accumulation.
//
//   xb  = bf16(x)                 (round to nearest even, while the halo'd copy is written)
//   wb  = bf16(w)                 (at pack time)
//   acc = sum over taps and input-channel pairs of xb0 * wb0 + xb1 * wb1     (float32)
//   y   = (acc + bias + time-embedding + residual) * output_scale
// With AVX-512 BF16 the pair sum is vdpbf16ps; elsewhere the exact-rounding fallback of
// lowp_dot.h (bf16 widened to float32, exact products, float32 sums). The reference
// (reference/conv2d_lowp.cpp) sums in another order: results agree to float32 rounding.
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d_lowp.h"
#include "kernels/cpu/cpu_kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {

using lowp::Bf16;

namespace {
// The accumulators already hold the float result.
struct FloatAccumulator {
  struct Column {};
  Column column(int, int) const { return {}; }
  vec operator()(const Bf16::Acc& acc, Column) const {
    vec v;
    std::memcpy(&v, &acc, sizeof(v));
    return v;
  }
};
}  // namespace

void pack_conv_bf16(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out) {
  const int64_t taps = static_cast<int64_t>(kernel) * kernel, per = in_c * taps;
  lowp::pack_panels(out_c, in_c, kernel, 2,
                    [&](int co, int ci, int t, uint8_t* dst) {
                      const uint16_t b = float_to_bf16(oihw[co * per + ci * taps + t]);
                      std::memcpy(dst, &b, 2);
                    },
                    out->data);
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = kernel;
  out->precision = Precision::BF16;
}

void conv2d_bf16(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 void* scratch, ThreadPool& pool) {
  if (w.precision != Precision::BF16 || w.in_c != p.in_c || w.out_c != p.out_c || w.kernel != p.kernel)
    fail(ErrorCode::Internal, "conv2d_bf16: weights do not match the convolution");
  lowp::check_geometry(p);
  uint32_t* xb = static_cast<uint32_t*>(scratch);
  const std::vector<uint16_t> zeros(p.batch, 0);
  lowp::prepare(
      p, x, 2, zeros.data(),
      [](const float* src, int count, int, uint8_t* dst) {
        for (int c = 0; c < count; ++c) {
          uint32_t bits;
          std::memcpy(&bits, &src[c], 4);
          // float_to_bf16, inlined so the loop vectorises; NaN stays NaN (quiet).
          const bool nan = (bits & 0x7fffffffu) > 0x7f800000u;
          const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
          const uint16_t b = static_cast<uint16_t>(nan ? ((bits >> 16) | 0x40u) : rounded);
          std::memcpy(dst + 2 * c, &b, 2);
        }
      },
      xb, pool);
  const lowp::Prepared in{xb, p.in_h + 2, p.in_w + 2, (p.in_c + 1) / 2};
  const FloatAccumulator dequant;
  lowp::run_conv<Bf16>(p, in, w, e, dequant, y, pool);
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
