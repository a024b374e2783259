// INT8 convolution: dynamically quantized activations x int8 weights, int32 accumulation.
//
// Per image n (the definition is in reference/conv2d_lowp.cpp): asymmetric, per tensor,
//   lo  = min(0, min x[n, ...]),  hi = max(0, max x[n, ...])
//   sx  = (hi - lo) / 254,  inv = 254 / (hi - lo),  z = -127 - round(lo * inv)
//   xq  = clamp(round_half_even(x * inv) + z, -127, 127), stored as the byte xq + kZero;
//         0 is exactly z (so the zero padding is the byte z + kZero)
//   acc = sum over taps and input channels of byte(xq) * q[co]     (lowp_dot.h, exact int32)
//       - (kZero + z) * sum(q[co])                                    (sum(q) precomputed)
//   y   = (float(acc) * (sx * scale[co]) + bias + time-embedding + residual) * output_scale
// Asymmetric because most conv inputs are SiLU outputs, in [-0.28, max]: a symmetric scale
// would leave half of the 255 levels unused. Passes: the per-image min / max (per-row
// partials, reduced in row order), the quantization into the halo'd scratch copy
// (conv2d_lowp.h), then the implicit GEMM whose epilogue dequantizes and applies the float
// epilogue before the single store. Integer sums are exact, so every ISA gives the
// reference's result up to the float epilogue's rounding.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/conv2d_lowp.h"
#include "kernels/cpu/cpu_kernels.h"

namespace fusediff::kernels::FUSEDIFF_ISA {

using lowp::Int8;

namespace {
// Header of the scratch: sx[batch], then per input row its min, max and NaN probe.
int64_t header_bytes(const Conv2dParams& p) {
  return lowp::align64((static_cast<int64_t>(p.batch) + 3 * static_cast<int64_t>(p.batch) * p.in_h) * 4);
}

// y = float(acc - (kZero + z[n]) * sum(q[co])) * (sx[n] * scale[co]), kVec channels at a time.
struct Dequant {
  struct Column {
    ivec zero_sum;  // (kZero + z[n]) * sum(q[co])
    vec scale;      // sx[n] * scale[co]
  };
  int out_c;
  const int32_t* offset;  // kZero + z[n]
  const float* sx;
  const int32_t* wsum;
  const float* scale;

  Column column(int n, int c0) const {
    ivec ws{};
    vec sc{};
    if (c0 + kVec <= out_c) {
      std::memcpy(&ws, wsum + c0, sizeof(ws));
      std::memcpy(&sc, scale + c0, sizeof(sc));
    } else {
      for (int i = 0; i < out_c - c0; ++i) ws[i] = wsum[c0 + i], sc[i] = scale[c0 + i];
    }
    return {offset[n] * ws, sx[n] * sc};
  }
  vec operator()(const Int8::Acc& a, const Column& col) const {
    ivec acc;
    std::memcpy(&acc, &a, sizeof(acc));
    return __builtin_convertvector(acc - col.zero_sum, vec) * col.scale;
  }
};
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
  float* row_min = sx + p.batch;
  float* row_max = row_min + static_cast<int64_t>(p.batch) * p.in_h;
  float* row_nan = row_max + static_cast<int64_t>(p.batch) * p.in_h;
  uint32_t* xq = reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(scratch) + header_bytes(p));

  const int64_t row_len = static_cast<int64_t>(p.in_w) * p.in_c;
  pool.parallel_for(static_cast<int64_t>(p.batch) * p.in_h, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* src = x + r * row_len;
      vec lo = vec{}, hi = vec{}, probe = vec{};
      int64_t i = 0;
      for (; i + kVec <= row_len; i += kVec) {
        const vec v = load(src + i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        probe += v * 0.0f;
      }
      float l = -hmax(-lo), h = hmax(hi), ps = hsum(probe);
      for (; i < row_len; ++i) {
        l = std::fmin(l, src[i]);
        h = std::fmax(h, src[i]);
        ps += src[i] * 0.0f;
      }
      row_min[r] = l;
      row_max[r] = h;
      row_nan[r] = ps;
    }
  });
  std::vector<float> inv(p.batch);
  std::vector<int32_t> z(p.batch);
  std::vector<int32_t> offset(p.batch);  // kZero + z: the stored byte of activation 0
  std::vector<uint16_t> zero_bytes(p.batch);
  for (int n = 0; n < p.batch; ++n) {
    float lo = 0.0f, hi = 0.0f, probe = 0.0f;
    for (int r = 0; r < p.in_h; ++r) {
      lo = std::fmin(lo, row_min[n * p.in_h + r]);
      hi = std::fmax(hi, row_max[n * p.in_h + r]);
      probe += row_nan[n * p.in_h + r];
    }
    const float range = hi - lo;
    inv[n] = range > 0.0f && std::isfinite(range) ? 254.0f / range : 1.0f;
    sx[n] = (range > 0.0f ? range / 254.0f : 1.0f) + probe;
    z[n] = -127 - static_cast<int32_t>(std::nearbyint(lo * inv[n]));
    offset[n] = z[n] + Int8::kZero;
    zero_bytes[n] = static_cast<uint16_t>(offset[n]);
  }

  lowp::prepare(
      p, x, 1, zero_bytes.data(),
      [&](const float* src, int count, int n, uint8_t* dst) {
        const float s = inv[n], zf = static_cast<float>(z[n]);
        for (int c = 0; c < count; ++c) {
          float t = src[c] * s;
          t = (t + 12582912.0f) - 12582912.0f;  // round half to even (|t| < 2^22)
          t += zf;
          t = t > -127.0f ? t : -127.0f;  // NaN (only with a non-finite image, whose sx is NaN) -> -127
          t = t < 127.0f ? t : 127.0f;
          dst[c] = static_cast<uint8_t>(static_cast<int32_t>(t) + Int8::kZero);
        }
      },
      xq, pool);

  const lowp::Prepared in{xq, p.in_h + 2, p.in_w + 2, (p.in_c + 3) / 4};
  const Dequant dequant{p.out_c, offset.data(), sx, w.wsum.data(), w.scale.data()};
  lowp::run_conv<Int8>(p, in, w, e, dequant, y, pool);
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
