// INT8 convolution: dynamically quantized activations x int8 weights, int32 accumulation.
//
// Per image n (the definition is in reference/conv2d_lowp.cpp):
//   mx  = max |x[n, ...]|,  sx = mx / 127,  inv = 127 / mx         (per tensor, per image)
//   xq  = clamp(round_half_even(x * inv), -127, 127), stored as the byte xq + kZero
//   acc = sum over taps and input channels of byte(xq) * q[co]     (lowp_dot.h, exact int32)
//       - kZero * sum(q[co])                                          (zero point, precomputed)
//   y   = (float(acc) * (sx * scale[co]) + bias + time-embedding + residual) * output_scale
// Two passes: the per-image max-abs (per-row partials, reduced in row order), then the
// quantization into the halo'd scratch copy (conv2d_lowp.h), then the implicit GEMM whose
// epilogue dequantizes and applies the float epilogue before the single store. Integer
// sums are exact, so every ISA gives bit-for-bit the reference's result.
#include <cmath>
#include <cstring>

#include "kernels/cpu/conv2d_lowp.h"
#include "kernels/cpu/cpu_kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {

using lowp::Int8;

namespace {
// Header of the scratch: sx[batch], then per input row its max-abs and NaN probe.
int64_t header_bytes(const Conv2dParams& p) {
  return lowp::align64((static_cast<int64_t>(p.batch) + 2 * static_cast<int64_t>(p.batch) * p.in_h) * 4);
}
}  // namespace

void pack_conv_int8(const int8_t* q, const float* scale, int out_c, int in_c, int kernel, PackedConv* out) {
  const int64_t taps = static_cast<int64_t>(kernel) * kernel, per = in_c * taps;
  // The unsigned-offset form sums (q + 128) * w: keep it below 2^31.
  if (per * 255 * 127 >= (int64_t{1} << 31))
    fail(ErrorCode::Unsupported, "int8 convolution with " + std::to_string(in_c) + " input channels is too deep for int32 sums");
  lowp::pack_panels(out_c, in_c, kernel, 1,
                    [&](int co, int ci, int t, uint8_t* dst) { std::memcpy(dst, &q[co * per + ci * taps + t], 1); },
                    out->data);
  out->scale.assign(scale, scale + out_c);
  out->wsum.assign(out_c, 0);
  for (int co = 0; co < out_c; ++co)
    for (int64_t i = 0; i < per; ++i) out->wsum[co] += q[co * per + i];
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = kernel;
  out->precision = Precision::I8;
}

int64_t lowp_conv_scratch_bytes(const Conv2dParams& p, Precision precision) {
  if (precision == Precision::I8) return header_bytes(p) + lowp::prepared_bytes(p, 4);
  if (precision == Precision::BF16) return lowp::prepared_bytes(p, 2);
  return 0;
}

void conv2d_int8(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 void* scratch, ThreadPool& pool) {
  if (w.precision != Precision::I8 || w.in_c != p.in_c || w.out_c != p.out_c || w.kernel != p.kernel)
    fail(ErrorCode::Internal, "conv2d_int8: weights do not match the convolution");
  lowp::check_geometry(p);
  float* sx = static_cast<float*>(scratch);
  float* row_max = sx + p.batch;
  float* row_nan = row_max + static_cast<int64_t>(p.batch) * p.in_h;
  uint32_t* xq = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(scratch) + header_bytes(p));

  const int64_t row_len = static_cast<int64_t>(p.in_w) * p.in_c;
  pool.parallel_for(static_cast<int64_t>(p.batch) * p.in_h, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* src = x + r * row_len;
      vec m = vec{}, probe = vec{};
      int64_t i = 0;
      for (; i + kVec <= row_len; i += kVec) {
        const vec v = load(src + i);
        const vec a = v < 0.0f ? -v : v;
        m = a > m ? a : m;
        probe += v * 0.0f;
      }
      float ms = hmax(m), ps = hsum(probe);
      for (; i < row_len; ++i) {
        ms = std::fmax(ms, std::fabs(src[i]));
        ps += src[i] * 0.0f;
      }
      row_max[r] = ms;
      row_nan[r] = ps;
    }
  });
  std::vector<float> inv(p.batch);
  for (int n = 0; n < p.batch; ++n) {
    float m = 0.0f, probe = 0.0f;
    for (int r = 0; r < p.in_h; ++r) {
      m = std::fmax(m, row_max[n * p.in_h + r]);
      probe += row_nan[n * p.in_h + r];
    }
    inv[n] = m > 0.0f ? 127.0f / m : 1.0f;
    sx[n] = (m > 0.0f ? m / 127.0f : 1.0f) + probe;
  }

  lowp::prepare(
      p, x, 1, Int8::kZero,
      [&](const float* src, int count, int n, uint8_t* dst) {
        const float s = inv[n];
        for (int c = 0; c < count; ++c) {
          float t = src[c] * s;
          t = t > -127.0f ? t : -127.0f;  // NaN (only with a non-finite image, whose sx is NaN) -> -127
          t = t < 127.0f ? t : 127.0f;
          t = (t + 12582912.0f) - 12582912.0f;  // round half to even (|t| < 2^22)
          dst[c] = static_cast<uint8_t>(static_cast<int32_t>(t) + Int8::kZero);
        }
      },
      xq, pool);

  const lowp::Prepared in{xq, p.in_h + 2, p.in_w + 2, (p.in_c + 3) / 4};
  const int32_t zero = Int8::kZero;
  auto dequant = [&](int32_t acc, int n, int co) {
    return static_cast<float>(acc - zero * w.wsum[co]) * (sx[n] * w.scale[co]);
  };
  lowp::run_conv<Int8>(p, in, w, e, dequant, y, pool);
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
