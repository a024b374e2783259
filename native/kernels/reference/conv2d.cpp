// Reference convolution: the definition in kernels.h, written as plainly as possible.
#include <cstring>

#include "kernels/reference/reference.h"

namespace fusediff::kernels::reference {

// Keeps PyTorch's [out_c][in_c][k][k] order whatever algorithm is asked, and records Direct:
// the reference computes the definition, which both algorithms are checked against.
void pack_conv(const float* oihw, int out_c, int in_c, int kernel, ConvAlgorithm, PackedConv* out) {
  const size_t n = static_cast<size_t>(out_c) * in_c * kernel * kernel;
  out->data = AlignedBuffer(n * sizeof(float));
  std::memcpy(out->data.f32(), oihw, n * sizeof(float));
  out->out_c = out_c;
  out->in_c = in_c;
  out->kernel = kernel;
}

namespace {

// Input pixel (iy, ix), channel ci, of image n, through a folded resampling (kernels.h).
float input(const Conv2dParams& p, const float* x, int n, int iy, int ix, int ci) {
  using R = Conv2dParams::InputResample;
  if (p.input_resample == R::Upsample2x) {
    const int h = p.in_h / 2, w = p.in_w / 2;
    return x[((static_cast<int64_t>(n) * h + iy / 2) * w + ix / 2) * p.in_c + ci];
  }
  if (p.input_resample == R::AvgPool2x) {
    const int h = 2 * p.in_h, w = 2 * p.in_w;
    auto at = [&](int y, int x_) { return x[((static_cast<int64_t>(n) * h + y) * w + x_) * p.in_c + ci]; };
    return ((at(2 * iy, 2 * ix) + at(2 * iy, 2 * ix + 1)) + (at(2 * iy + 1, 2 * ix) + at(2 * iy + 1, 2 * ix + 1))) * 0.25f;
  }
  return x[((static_cast<int64_t>(n) * p.in_h + iy) * p.in_w + ix) * p.in_c + ci];
}

}  // namespace

void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
            ThreadPool&) {
  const int k = p.kernel;
  for (int n = 0; n < p.batch; ++n)
    for (int oy = 0; oy < p.out_h; ++oy)
      for (int ox = 0; ox < p.out_w; ++ox)
        for (int co = 0; co < p.out_c; ++co) {
          float acc = 0.0f;
          for (int ky = 0; ky < k; ++ky) {
            int iy = oy * p.stride - p.pad_top + ky;
            if (p.circular) iy = (iy % p.in_h + p.in_h) % p.in_h;
            if (iy < 0 || iy >= p.in_h) continue;
            for (int kx = 0; kx < k; ++kx) {
              int ix = ox * p.stride - p.pad_left + kx;
              if (p.circular) ix = (ix % p.in_w + p.in_w) % p.in_w;
              if (ix < 0 || ix >= p.in_w) continue;
              const float* wk = w.data.f32() + static_cast<int64_t>(co) * p.in_c * k * k + ky * k + kx;
              for (int ci = 0; ci < p.in_c; ++ci) acc += input(p, x, n, iy, ix, ci) * wk[static_cast<int64_t>(ci) * k * k];
            }
          }
          const int64_t o = ((static_cast<int64_t>(n) * p.out_h + oy) * p.out_w + ox) * p.out_c + co;
          if (e.bias) acc += e.bias[co];
          if (e.batch_bias) acc += e.batch_bias[n * e.batch_bias_stride + co];
          if (e.residual) acc += e.residual[o];
          y[o] = acc * e.output_scale;
        }
}

}  // namespace fusediff::kernels::reference
