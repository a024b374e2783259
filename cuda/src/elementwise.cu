// The memory-bound ops of kernels/elementwise.h, one thread per output value (grid-stride):
//
//   nchw_to_nhwc   y[n, p, c] = x[n, c, p]        (x -> 2x - 1 with center)
//   nhwc_to_nchw   y[n, c, p] = x[n, p, c] / divisor[n]   (divisor optional)
//   silu           y = x * sigmoid(x)
//   add            y += x
//   upsample2x     y[n, 2i + a, 2j + b, c] = x[n, i, j, c]
//   avg_pool2x2    y[n, i, j, c] = mean of x[n, 2i + {0,1}, 2j + {0,1}, c]
//   concat         y[p] = [a[p] (ca values), b[p] (cb values)]
#include "ops.h"

namespace fusediff::cuda {
namespace {

#define FDC_FOR_EACH(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)

__global__ void nchw_to_nhwc_kernel(const float* x, int64_t n, int channels, int64_t pixels, bool center, float* y) {
  FDC_FOR_EACH(i, n) {  // i indexes y: ((b * pixels) + p) * channels + c
    const int c = static_cast<int>(i % channels);
    const int64_t bp = i / channels;
    const int64_t b = bp / pixels, p = bp % pixels;
    const float v = x[(b * channels + c) * pixels + p];
    y[i] = center ? 2.0f * v - 1.0f : v;
  }
}

__global__ void nhwc_to_nchw_kernel(const float* x, int64_t n, int channels, int64_t pixels, const float* divisor,
                                    float* y) {
  FDC_FOR_EACH(i, n) {  // i indexes y: ((b * channels) + c) * pixels + p
    const int64_t p = i % pixels;
    const int64_t bc = i / pixels;
    const int64_t b = bc / channels;
    const int c = static_cast<int>(bc % channels);
    const float v = x[(b * pixels + p) * channels + c];
    y[i] = divisor ? v / divisor[b] : v;
  }
}

__global__ void silu_kernel(const float* x, int64_t n, float* y) {
  FDC_FOR_EACH(i, n) {
    const float v = x[i];
    y[i] = v / (1.0f + expf(-v));
  }
}

__global__ void add_kernel(const float* x, int64_t n, float* y) {
  FDC_FOR_EACH(i, n) y[i] += x[i];
}

__global__ void upsample_kernel(const float* x, int64_t n, int height, int width, int channels, float* y) {
  FDC_FOR_EACH(i, n) {  // i indexes y [b][2h][2w][c]
    const int c = static_cast<int>(i % channels);
    int64_t t = i / channels;
    const int ox = static_cast<int>(t % (2 * width));
    t /= 2 * width;
    const int oy = static_cast<int>(t % (2 * height));
    const int64_t b = t / (2 * height);
    y[i] = x[((b * height + oy / 2) * width + ox / 2) * channels + c];
  }
}

__global__ void avg_pool_kernel(const float* x, int64_t n, int height, int width, int channels, float* y) {
  const int oh = height / 2, ow = width / 2;
  FDC_FOR_EACH(i, n) {  // i indexes y [b][h/2][w/2][c]
    const int c = static_cast<int>(i % channels);
    int64_t t = i / channels;
    const int ox = static_cast<int>(t % ow);
    t /= ow;
    const int oy = static_cast<int>(t % oh);
    const int64_t b = t / oh;
    const float* p = x + ((b * height + 2 * oy) * width + 2 * ox) * channels + c;
    const int64_t row = static_cast<int64_t>(width) * channels;
    y[i] = ((p[0] + p[channels]) + (p[row] + p[row + channels])) * 0.25f;  // the CPU order
  }
}

__global__ void concat_kernel(const float* a, int ca, const float* b, int cb, int64_t n, float* y) {
  const int c = ca + cb;
  FDC_FOR_EACH(i, n) {
    const int64_t p = i / c;
    const int k = static_cast<int>(i % c);
    y[i] = k < ca ? a[p * ca + k] : b[p * cb + (k - ca)];
  }
}

}  // namespace

int nchw_to_nhwc(fdc_context* ctx, const float* x, int batch, int channels, int height, int width, bool center,
                 float* y) {
  const int64_t pixels = static_cast<int64_t>(height) * width, n = batch * pixels * channels;
  nchw_to_nhwc_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(x, n, channels, pixels, center, y);
  FDC_LAUNCHED("nchw_to_nhwc");
  return FDC_OK;
}

int nhwc_to_nchw(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, const float* divisor,
                 float* y) {
  const int64_t pixels = static_cast<int64_t>(height) * width, n = batch * pixels * channels;
  nhwc_to_nchw_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(x, n, channels, pixels, divisor, y);
  FDC_LAUNCHED("nhwc_to_nchw");
  return FDC_OK;
}

int silu(fdc_context* ctx, const float* x, int64_t count, float* y) {
  silu_kernel<<<grid_for(count), kThreads, 0, ctx->stream>>>(x, count, y);
  FDC_LAUNCHED("silu");
  return FDC_OK;
}

int add(fdc_context* ctx, const float* x, int64_t count, float* y) {
  add_kernel<<<grid_for(count), kThreads, 0, ctx->stream>>>(x, count, y);
  FDC_LAUNCHED("add");
  return FDC_OK;
}

int upsample_nearest2x(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, float* y) {
  const int64_t n = static_cast<int64_t>(batch) * 4 * height * width * channels;
  upsample_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(x, n, height, width, channels, y);
  FDC_LAUNCHED("upsample_nearest2x");
  return FDC_OK;
}

int avg_pool2x2(fdc_context* ctx, const float* x, int batch, int height, int width, int channels, float* y) {
  const int64_t n = static_cast<int64_t>(batch) * (height / 2) * (width / 2) * channels;
  avg_pool_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(x, n, height, width, channels, y);
  FDC_LAUNCHED("avg_pool2x2");
  return FDC_OK;
}

int concat_channels(fdc_context* ctx, const float* a, int ca, const float* b, int cb, int64_t pixels, float* y) {
  const int64_t n = pixels * (ca + cb);
  concat_kernel<<<grid_for(n), kThreads, 0, ctx->stream>>>(a, ca, b, cb, n, y);
  FDC_LAUNCHED("concat_channels");
  return FDC_OK;
}

}  // namespace fusediff::cuda
