// Reference int8 and bfloat16 convolutions: the definitions in kernels.h written as plainly as
// possible, the oracle of the fast kernels in cpu/conv2d_int8.cpp and cpu/conv2d_bf16.cpp.
//
// INT8 (per image n; asymmetric, over the whole image: per-tensor, per-image):
//   lo    = min(0, min x[n, ...]),  hi = max(0, max x[n, ...])
//   sx    = (hi - lo) / 254,  inv = 254 / (hi - lo)   (sx = 1, inv = 1 when the image is all zero)
//   z     = -127 - round_half_even(lo * inv)          (the integer that stands for 0)
//   xq    = clamp(round_half_even(x * inv) + z, -127, 127)
//   acc   = sum_{ky,kx,ci} (xq[n, iy, ix, ci] - z) * q[co, ci, ky, kx]   (exact, int32; padding is 0)
//   y     = (float(acc) * (sx * scale[co]) + bias + batch_bias + residual) * output_scale
// A non-finite value in the image makes sx NaN, so the whole image's output is NaN, as the
// float convolution's would (mostly) be, rather than silently wrong numbers.
//
// BF16: x and w rounded to bfloat16 (nearest even); the products are exact in float32 and are
// summed in float32, then the float epilogue.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/reference/reference.h"

namespace fusediff::kernels::reference {
namespace {

float bf16_round(float x) {
  const uint32_t bits = static_cast<uint32_t>(float_to_bf16(x)) << 16;
  float y;
  std::memcpy(&y, &bits, sizeof(y));
  return y;
}

// The shared loop: acc(n, co, x index, w index) -> float, then the epilogue.
template <typename Acc, typename Dequant>
void conv_loop(const Conv2dParams& p, const ConvEpilogue& e, float* y, Acc acc0, const std::vector<Acc>& xs,
               const Acc* w, Dequant dequant) {
  const int k = p.kernel;
  for (int n = 0; n < p.batch; ++n)
    for (int oy = 0; oy < p.out_h; ++oy)
      for (int ox = 0; ox < p.out_w; ++ox)
        for (int co = 0; co < p.out_c; ++co) {
          Acc acc = acc0;
          for (int ky = 0; ky < k; ++ky) {
            int iy = oy * p.stride - p.pad_top + ky;
            if (p.circular) iy = (iy % p.in_h + p.in_h) % p.in_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < k; ++kx) {
              int ix = ox * p.stride - p.pad_left + kx;
              if (p.circular) ix = (ix % p.in_w + p.in_w) % p.in_w;
              if (ix < 0 || ix >= p.in_w) continue;
              const Acc* px = xs.data() + ((static_cast<int64_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c;
              const Acc* wk = w + static_cast<int64_t>(co) * p.in_c * k * k + ky * k + kx;
              for (int ci = 0; ci < p.in_c; ++ci) acc += px[ci] * wk[static_cast<int64_t>(ci) * k * k];
            }
          }
          const int64_t o = ((static_cast<int64_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c + co;
          float s = dequant(acc, n, co);
          if (e.bias) s += e.bias[co];
          if (e.batch_bias) s += e.batch_bias[n * e.batch_bias_stride + co];
          if (e.residual) s += e.residual[o];
          y[o] = s * e.output_scale;
        }
}

void fill_header(PackedConv* out, int out_c, int in_c, int kernel, Precision precision) {
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = kernel;
  out->precision = precision;
}

}  // namespace

// Keeps PyTorch's order, widened to int32 for the plain loop.
void pack_conv_int8(const int8_t* q, const float* scale, int out_c, int in_c, int kernel, PackedConv* out) {
  const int64_t per = static_cast<int64_t>(in_c) * kernel * kernel;
  out->data = AlignedBuffer(static_cast<size_t>(out_c * per) * sizeof(int32_t));
  int32_t* dst = static_cast<int32_t*>(out->data.data());
  out->scale.assign(scale, scale + out_c);
  out->wsum.assign(out_c, 0);
  for (int co = 0; co < out_c; ++co)
    for (int64_t i = 0; i < per; ++i) {
      dst[co * per + i] = q[co * per + i];
      out->wsum[co] += q[co * per + i];
    }
  fill_header(out, out_c, in_c, kernel, Precision::I8);
}

// PyTorch's order, each weight rounded to bfloat16 and kept as the float it represents.
void pack_conv_bf16(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out) {
  const size_t n = static_cast<size_t>(out_c) * in_c * kernel * kernel;
  out->data = AlignedBuffer(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) out->data.f32()[i] = bf16_round(oihw[i]);
  fill_header(out, out_c, in_c, kernel, Precision::BF16);
}

int64_t lowp_conv_scratch_bytes(const Conv2dParams&, Precision) { return 0; }

void conv2d_int8(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y, void*,
                 ThreadPool&) {
  if (w.precision != Precision::I8) fail(ErrorCode::Internal, "conv2d_int8 given non-int8 weights");
  if (p.input_resample != Conv2dParams::InputResample::None)
    fail(ErrorCode::Internal, "conv2d_int8: no folded resampling (float convolutions only)");
  const int64_t image = static_cast<int64_t>(p.in_h) * p.in_w * p.in_c;
  std::vector<int32_t> xq(static_cast<size_t>(image * p.batch));
  std::vector<float> sx(p.batch);
  for (int n = 0; n < p.batch; ++n) {
    float lo = 0.0f, hi = 0.0f, nan_probe = 0.0f;
    for (int64_t i = 0; i < image; ++i) {
      const float v = x[n * image + i];
      lo = std::fmin(lo, v);
      hi = std::fmax(hi, v);
      nan_probe += v * 0.0f;  // NaN if any value is NaN or infinite
    }
    const float range = hi - lo;
    const float inv = range > 0.0f && std::isfinite(range) ? 254.0f / range : 1.0f;
    sx[n] = (range > 0.0f ? range / 254.0f : 1.0f) + nan_probe;
    const int32_t z = -127 - static_cast<int32_t>(std::nearbyint(lo * inv));
    for (int64_t i = 0; i < image; ++i) {
      float r = std::nearbyint(x[n * image + i] * inv) + static_cast<float>(z);
      r = r > -127.0f ? r : -127.0f;  // NaN -> -127 (the image's sx is NaN then)
      r = r < 127.0f ? r : 127.0f;
      xq[n * image + i] = static_cast<int32_t>(r) - z;
    }
  }
  const int32_t* wq = static_cast<const int32_t*>(w.data.data());
  conv_loop<int32_t>(p, e, y, 0, xq, wq,
                     [&](int32_t acc, int n, int co) { return static_cast<float>(acc) * (sx[n] * w.scale[co]); });
}

void conv2d_bf16(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y, void*,
                 ThreadPool&) {
  if (w.precision != Precision::BF16) fail(ErrorCode::Internal, "conv2d_bf16 given non-bf16 weights");
  if (p.input_resample != Conv2dParams::InputResample::None)
    fail(ErrorCode::Internal, "conv2d_bf16: no folded resampling (float convolutions only)");
  const int64_t count = static_cast<int64_t>(p.batch) * p.in_h * p.in_w * p.in_c;
  std::vector<float> xr(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) xr[i] = bf16_round(x[i]);
  conv_loop<float>(p, e, y, 0.0f, xr, w.data.f32(), [](float acc, int, int) { return acc; });
}

}  // namespace fusediff::kernels::reference
