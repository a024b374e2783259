// INT8 convolution for quantized models (format in fusediff_cuda.h; host twin
// cuda::conv2d_int8_host in conv_layout.h):
//
//   s_x[n]  = max|x[n]| / 127                        (one block per image: a max reduction)
//   q_x     = round(x / s_x)  -> int8 scratch        (one thread per value)
//   acc     = sum over k-groups of dp4a(q_x[4 k], q_w[4 k])   (int32, exact)
//   y       = epilogue(acc * s_x[n] * s_w[co])
//
// The GEMM kernel is the plain one-thread-per-output form (like conv2d_fp32): the four input
// bytes of a group are gathered one by one through conv_input_index, so any in_c works.
#include "conv_layout.h"
#include "ops.h"

namespace fusediff::cuda {
namespace {

constexpr int kReduceThreads = 256;

__global__ void __launch_bounds__(kReduceThreads) input_scales(const float* x, int64_t image, float* scales) {
  __shared__ float part[kReduceThreads / 32];
  const float* img = x + blockIdx.x * image;
  float m = 0.0f;
  for (int64_t i = threadIdx.x; i < image; i += kReduceThreads) m = fmaxf(m, fabsf(img[i]));
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int i = 1; i < kReduceThreads / 32; ++i) m = fmaxf(m, part[i]);
    m = fmaxf(m, part[0]);
    scales[blockIdx.x] = m > 0.0f ? m / 127.0f : 1.0f;
  }
}

__global__ void quantize_inputs(const float* x, int64_t n, int64_t image, const float* scales, int8_t* q) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    q[i] = quantize_int8(x[i], scales[i / image]);
}

__global__ void conv2d_int8_kernel(fdc_conv2d_params p, const int8_t* __restrict__ qx, const float* __restrict__ xscale,
                                   const uint32_t* __restrict__ words, const float* __restrict__ wscale, fdc_epilogue e,
                                   float* __restrict__ y) {
  const int64_t total = conv_gemm_m(p) * p.out_c;
  const int K = conv_gemm_k(p), groups = conv_int8_groups(K);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int co = static_cast<int>(i % p.out_c);
    const int64_t m = i / p.out_c;
    const ConvRow r = conv_row(p, m);
    int acc = 0;
    for (int g = 0; g < groups; ++g) {
      uint32_t a = 0;
      for (int j = 0; j < 4; ++j) {
        const int k = 4 * g + j;
        if (k >= K) break;
        const int64_t xi = conv_input_index(p, r, k);
        if (xi >= 0) a |= static_cast<uint32_t>(static_cast<uint8_t>(qx[xi])) << (8 * j);
      }
      acc = __dp4a(static_cast<int>(a), static_cast<int>(words[static_cast<int64_t>(g) * p.out_c + co]), acc);
    }
    const float v = static_cast<float>(acc) * xscale[r.n] * wscale[co];
    y[i] = conv_epilogue(e, m, r.n, co, p.out_c, v);
  }
}

int64_t align256(int64_t n) { return (n + 255) / 256 * 256; }

}  // namespace

int64_t conv2d_int8_scratch_bytes(const fdc_conv2d_params& p) {
  return align256(static_cast<int64_t>(p.batch) * 4) +
         align256(static_cast<int64_t>(p.batch) * p.in_h * p.in_w * p.in_c);
}

int conv2d_int8(fdc_context* ctx, const fdc_conv2d_params& p, const float* x, const void* packed, const fdc_epilogue& e,
                float* y, void* scratch) {
  const int64_t image = static_cast<int64_t>(p.in_h) * p.in_w * p.in_c;
  auto* xscale = static_cast<float*>(scratch);
  auto* qx = reinterpret_cast<int8_t*>(static_cast<unsigned char*>(scratch) + align256(static_cast<int64_t>(p.batch) * 4));
  input_scales<<<static_cast<unsigned>(p.batch), kReduceThreads, 0, ctx->stream>>>(x, image, xscale);
  FDC_LAUNCHED("conv2d_int8 input scales");
  quantize_inputs<<<grid_for(p.batch * image), kThreads, 0, ctx->stream>>>(x, p.batch * image, image, xscale, qx);
  FDC_LAUNCHED("conv2d_int8 quantize");
  const int groups = conv_int8_groups(conv_gemm_k(p));
  const auto* words = static_cast<const uint32_t*>(packed);
  const auto* wscale = reinterpret_cast<const float*>(words + static_cast<int64_t>(groups) * p.out_c);
  conv2d_int8_kernel<<<grid_for(conv_gemm_m(p) * p.out_c), kThreads, 0, ctx->stream>>>(p, qx, xscale, words, wscale, e, y);
  FDC_LAUNCHED("conv2d_int8");
  return FDC_OK;
}

}  // namespace fusediff::cuda
