// Convolution with the fused epilogue of kernels.h, as the implicit GEMM of conv_layout.h:
//
//   Y[m][co] = epilogue( sum_k A[m][k] * W[k][co] )
//   m: output pixel (n, oy, ox); k: (ky, kx, ci); A gathered from NHWC x on the fly (no im2col
//   buffer); W packed [K][out_c] at load.
//
// CPU twin: cuda::conv2d_gemm_host (conv_layout.h) and kernels/reference/conv2d.cpp.
//
// Two kernels:
//  - conv2d_fp32: one thread per output value, plain float FMAs (fmaf). The obviously-correct
//    device baseline (FDC_MATH_FP32), and the oracle the tensor-core kernels are tested against.
//  - conv2d_wmma<T>: a 64 x 64 output tile per block of four warps, K in steps of 32 through
//    shared memory, WMMA tensor-core fragments (TF32 m16n16k8 or BF16 m16n16k16) with float
//    accumulators, then the epilogue from a shared-memory copy of the tile. Every load is
//    bounds-checked and zero-filled, so any M, K, out_c works (no padding requirements).
#include <cuda_bf16.h>
#include <mma.h>

#include "conv_layout.h"
#include "ops.h"

namespace fusediff::cuda {
namespace {

using namespace nvcuda;

// --- FP32 baseline ----------------------------------------------------------------------
// y[m, co] = epilogue(sum_k A[m][k] W[k][co]); threads along co read W coalesced and share x.
__global__ void conv2d_fp32(fdc_conv2d_params p, const float* __restrict__ x, const float* __restrict__ w,
                            fdc_epilogue e, float* __restrict__ y) {
  const int64_t total = conv_gemm_m(p) * p.out_c;
  const int K = conv_gemm_k(p);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int co = static_cast<int>(i % p.out_c);
    const int64_t m = i / p.out_c;
    const ConvRow r = conv_row(p, m);
    float acc = 0.0f;
    for (int k = 0; k < K; ++k) {
      const int64_t xi = conv_input_index(p, r, k);
      if (xi >= 0) acc = fmaf(x[xi], w[static_cast<int64_t>(k) * p.out_c + co], acc);
    }
    y[i] = conv_epilogue(e, m, r.n, co, p.out_c, acc);
  }
}

// --- Tensor cores -------------------------------------------------------------------------
constexpr int BM = 64, BN = 64, BK = 32;  // block tile: 64 pixels x 64 channels, K step 32
constexpr int kWarps = 4;                  // 2 x 2 warps, each a 32 x 32 sub-tile
constexpr int kTileThreads = kWarps * 32;

// Per element type: the WMMA shape and the conversions into shared memory.
template <typename T>
struct Mma;
template <>
struct Mma<float> {  // TF32: values are stored rounded to tf32 in float containers
  static constexpr int kK = 8;
  using Prec = wmma::precision::tf32;
  using Stored = float;
  __device__ static float from_float(float v) { return wmma::__float_to_tf32(v); }
  __device__ static float from_weight(const float* w, int64_t i) { return wmma::__float_to_tf32(w[i]); }
};
template <>
struct Mma<__nv_bfloat16> {
  static constexpr int kK = 16;
  using Prec = __nv_bfloat16;
  using Stored = __nv_bfloat16;
  __device__ static __nv_bfloat16 from_float(float v) { return __float2bfloat16_rn(v); }
  __device__ static __nv_bfloat16 from_weight(const __nv_bfloat16* w, int64_t i) { return w[i]; }
};

// Shared memory rows are padded (+8 elements) to spread banks; strides stay multiples of 16
// bytes and every fragment pointer 32-byte aligned, as WMMA requires.
template <typename S>
struct TileMemory {
  static constexpr int kLdA = BK + 8;  // A tile [BM][kLdA]
  static constexpr int kLdB = BN + 8;  // B tile [BK][kLdB]
  static constexpr int kLdC = BN + 8;  // C tile [BM][kLdC] (float), reusing the same bytes
  static constexpr int kABytes = BM * kLdA * static_cast<int>(sizeof(S));
  static constexpr int kBBytes = BK * kLdB * static_cast<int>(sizeof(S));
  static constexpr int kCBytes = BM * kLdC * static_cast<int>(sizeof(float));
  static constexpr int kBytes = (kABytes + kBBytes) > kCBytes ? (kABytes + kBBytes) : kCBytes;
};

template <typename T>
__global__ void __launch_bounds__(kTileThreads)
    conv2d_wmma(fdc_conv2d_params p, const float* __restrict__ x, const typename Mma<T>::Stored* __restrict__ w,
                fdc_epilogue e, float* __restrict__ y) {
  using S = typename Mma<T>::Stored;
  using Mem = TileMemory<S>;
  constexpr int MK = Mma<T>::kK;
  __shared__ __align__(128) unsigned char smem[Mem::kBytes];
  __shared__ ConvRow rows[BM];
  S* As = reinterpret_cast<S*>(smem);
  S* Bs = reinterpret_cast<S*>(smem + Mem::kABytes);
  float* Cs = reinterpret_cast<float*>(smem);

  const int64_t M = conv_gemm_m(p);
  const int K = conv_gemm_k(p);
  const int64_t m0 = static_cast<int64_t>(blockIdx.x) * BM;
  const int n0 = blockIdx.y * BN;
  const int tid = threadIdx.x;
  const int warp = tid / 32;
  const int wm = warp / 2, wn = warp % 2;

  // Each row's image and tap origin, once per block (m >= M: a row that reads zeros).
  for (int r = tid; r < BM; r += kTileThreads)
    rows[r] = m0 + r < M ? conv_row(p, m0 + r) : ConvRow{-1, 0, 0};

  wmma::fragment<wmma::accumulator, 16, 16, MK, float> acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);
  __syncthreads();

  for (int k0 = 0; k0 < K; k0 += BK) {
    // A tile: thread t fills column t % BK of rows t / BK, t / BK + 4, ...: consecutive
    // threads read consecutive channels of one pixel.
    {
      const int c = tid % BK;
      const int k = k0 + c;
      for (int r = tid / BK; r < BM; r += kTileThreads / BK) {
        float v = 0.0f;
        if (k < K && rows[r].n >= 0) {
          const int64_t xi = conv_input_index(p, rows[r], k);
          if (xi >= 0) v = x[xi];
        }
        As[r * Mem::kLdA + c] = Mma<T>::from_float(v);
      }
    }
    // B tile: rows k0.., columns n0..; consecutive threads read consecutive co.
    {
      const int c = tid % BN;
      for (int r = tid / BN; r < BK; r += kTileThreads / BN) {
        const int k = k0 + r, co = n0 + c;
        Bs[r * Mem::kLdB + c] = (k < K && co < p.out_c) ? Mma<T>::from_weight(w, static_cast<int64_t>(k) * p.out_c + co)
                                                        : Mma<T>::from_float(0.0f);
      }
    }
    __syncthreads();
    for (int kk = 0; kk < BK; kk += MK) {
      wmma::fragment<wmma::matrix_a, 16, 16, MK, typename Mma<T>::Prec, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, MK, typename Mma<T>::Prec, wmma::row_major> b[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], As + (wm * 32 + i * 16) * Mem::kLdA + kk, Mem::kLdA);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], Bs + kk * Mem::kLdB + wn * 32 + j * 16, Mem::kLdB);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }

  // The tile through shared memory, then the epilogue with coalesced NHWC stores.
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * Mem::kLdC + wn * 32 + j * 16, acc[i][j], Mem::kLdC,
                              wmma::mem_row_major);
  __syncthreads();
  for (int idx = tid; idx < BM * BN; idx += kTileThreads) {
    const int r = idx / BN, c = idx % BN;
    const int64_t m = m0 + r;
    const int co = n0 + c;
    if (m < M && co < p.out_c) y[m * p.out_c + co] = conv_epilogue(e, m, rows[r].n, co, p.out_c, Cs[r * Mem::kLdC + c]);
  }
}

}  // namespace

int conv2d(fdc_context* ctx, const fdc_conv2d_params& p, const float* x, const void* w, int math, const fdc_epilogue& e,
           float* y) {
  const int64_t M = conv_gemm_m(p);
  if (math == FDC_MATH_FP32) {
    conv2d_fp32<<<grid_for(M * p.out_c), kThreads, 0, ctx->stream>>>(p, x, static_cast<const float*>(w), e, y);
    FDC_LAUNCHED("conv2d_fp32");
    return FDC_OK;
  }
  const int64_t tiles_m = (M + BM - 1) / BM;
  if (tiles_m > 0x7fffffff) return set_error(FDC_ERR_UNSUPPORTED, "conv2d: too many output pixels for one launch");
  const dim3 grid(static_cast<unsigned>(tiles_m), static_cast<unsigned>((p.out_c + BN - 1) / BN));
  if (math == FDC_MATH_TF32) {
    conv2d_wmma<float><<<grid, kTileThreads, 0, ctx->stream>>>(p, x, static_cast<const float*>(w), e, y);
    FDC_LAUNCHED("conv2d_wmma<tf32>");
  } else {
    conv2d_wmma<__nv_bfloat16><<<grid, kTileThreads, 0, ctx->stream>>>(p, x, static_cast<const __nv_bfloat16*>(w), e, y);
    FDC_LAUNCHED("conv2d_wmma<bf16>");
  }
  return FDC_OK;
}

}  // namespace fusediff::cuda
