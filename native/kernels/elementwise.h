// The memory-bound ops of the U-Net, on NHWC float32 activations. One plain, threaded
// implementation each: they move bytes, and the FLOP-heavy work lives in the kernel table.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace fusediff::kernels {

// API tensors are NCHW; the engine works in NHWC. `center` applies diffusers'
// center_input_sample (x -> 2x - 1) on the way in.
void nchw_to_nhwc(const float* x, int batch, int channels, int height, int width, bool center, float* y,
                  ThreadPool& pool);
// On the way out; `divisor` (nullable, one per batch item) divides each image, as the
// Fourier-embedding models divide their output by the noise level.
void nhwc_to_nchw(const float* x, int batch, int height, int width, int channels, const float* divisor, float* y,
                  ThreadPool& pool);

// y = x * sigmoid(x), elementwise.
void silu(const float* x, int64_t count, float* y);

// Nearest-neighbour x2: y[n, 2i + a, 2j + b, c] = x[n, i, j, c].
void upsample_nearest2x(const float* x, int batch, int height, int width, int channels, float* y, ThreadPool& pool);
// 2x2 average pooling with stride 2 (height and width even).
void avg_pool2x2(const float* x, int batch, int height, int width, int channels, float* y, ThreadPool& pool);
// y[pixel] = concat(a[pixel] (ca channels), b[pixel] (cb channels)).
void concat_channels(const float* a, int ca, const float* b, int cb, int64_t pixels, float* y, ThreadPool& pool);

}  // namespace fusediff::kernels
