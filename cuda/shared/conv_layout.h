// The convolution as an implicit GEMM, and the weight layout the CUDA kernels read: host and
// device code in one header, so that the engine's host tests run the very index arithmetic
// the kernels use (native/tests/test_cuda_layout.cpp) without a GPU.
//
//   Y[m][co] = sum_k A[m][k] * W[k][co]
//   m = (n * out_h + oy) * out_w + ox                      (one GEMM row per output pixel)
//   k = (ky * kernel + kx) * in_c + ci                      (one GEMM column per tap and channel)
//   A[m][k] = x[n, oy * stride - pad_top + ky, ox * stride - pad_left + kx, ci]
//             (0 outside the input, or wrapped with circular padding)
//   W[k][co] = w_oihw[co][ci][ky][kx]                       (the packed weights)
//
// Consecutive k inside one tap are consecutive channels of one NHWC pixel: a tile of A is
// read along contiguous memory, as is a tile of W along co.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "fusediff_cuda.h"

#if defined(__CUDACC__)
#define FDC_HD __host__ __device__
#else
#define FDC_HD
#endif

namespace fusediff::cuda {

FDC_HD inline int conv_gemm_k(const fdc_conv2d_params& p) { return p.kernel * p.kernel * p.in_c; }
FDC_HD inline int64_t conv_gemm_m(const fdc_conv2d_params& p) {
  return static_cast<int64_t>(p.batch) * p.out_h * p.out_w;
}

// Where output row m starts reading: its image and the input coordinate of tap (0, 0).
struct ConvRow {
  int n, iy0, ix0;
};
FDC_HD inline ConvRow conv_row(const fdc_conv2d_params& p, int64_t m) {
  const int ox = static_cast<int>(m % p.out_w);
  const int64_t t = m / p.out_w;
  const int oy = static_cast<int>(t % p.out_h);
  const int n = static_cast<int>(t / p.out_h);
  return ConvRow{n, oy * p.stride - p.pad_top, ox * p.stride - p.pad_left};
}

// Index into x of A[m][k] for the row `r` of m, or -1 where the value is zero padding.
FDC_HD inline int64_t conv_input_index(const fdc_conv2d_params& p, const ConvRow& r, int k) {
  const int ci = k % p.in_c;
  const int tap = k / p.in_c;
  int iy = r.iy0 + tap / p.kernel;
  int ix = r.ix0 + tap % p.kernel;
  if (p.circular) {
    iy = ((iy % p.in_h) + p.in_h) % p.in_h;
    ix = ((ix % p.in_w) + p.in_w) % p.in_w;
  } else if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) {
    return -1;
  }
  return ((static_cast<int64_t>(r.n) * p.in_h + iy) * p.in_w + ix) * p.in_c + ci;
}

// The epilogue of kernels.h for output element (m, co) with accumulator acc.
FDC_HD inline float conv_epilogue(const fdc_epilogue& e, int64_t m, int n, int co, int out_c, float acc) {
  if (e.bias) acc += e.bias[co];
  if (e.batch_bias) acc += e.batch_bias[n * e.batch_bias_stride + co];
  if (e.residual) acc += e.residual[m * out_c + co];
  return acc * e.output_scale;
}

// W[k][co] from PyTorch's [out_c][in_c][kernel][kernel] (host).
inline void pack_conv_kco(const float* oihw, int out_c, int in_c, int kernel, float* packed) {
  for (int co = 0; co < out_c; ++co)
    for (int ci = 0; ci < in_c; ++ci)
      for (int ky = 0; ky < kernel; ++ky)
        for (int kx = 0; kx < kernel; ++kx) {
          const int64_t k = static_cast<int64_t>(ky * kernel + kx) * in_c + ci;
          packed[k * out_c + co] = oihw[((static_cast<int64_t>(co) * in_c + ci) * kernel + ky) * kernel + kx];
        }
}

// bfloat16 bits of a float, rounded to nearest even (NaN kept quiet).
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// The whole convolution through the GEMM view above, on the host: the CPU twin of the CUDA
// kernels' indexing (tests only; slow and plain).
inline void conv2d_gemm_host(const fdc_conv2d_params& p, const float* x, const float* packed, const fdc_epilogue& e,
                             float* y) {
  const int64_t M = conv_gemm_m(p);
  const int K = conv_gemm_k(p);
  for (int64_t m = 0; m < M; ++m) {
    const ConvRow r = conv_row(p, m);
    for (int co = 0; co < p.out_c; ++co) {
      float acc = 0.0f;
      for (int k = 0; k < K; ++k) {
        const int64_t i = conv_input_index(p, r, k);
        if (i >= 0) acc += x[i] * packed[static_cast<int64_t>(k) * p.out_c + co];
      }
      y[m * p.out_c + co] = conv_epilogue(e, m, r.n, co, p.out_c, acc);
    }
  }
}

// --- INT8 (this library's own packing; see fusediff_cuda.h) -----------------------------
//   weights: s_w[co] = max|w[co, ...]| / 127 (1 when all zero), q_w = round(w / s_w) in [-127, 127]
//            packed as int32 words [ceil(K / 4)][out_c]: word (g, co) holds q_w[k = 4g + j] in
//            byte j (little-endian), zero past K; then out_c floats s_w.
//   inputs:  s_x[n] = max|x[n, ...]| / 127 per image (1 when all zero), q_x = round(x / s_x)
//   y = epilogue( (sum_k q_x * q_w) * s_x[n] * s_w[co] )      (int32 accumulation, exact)
FDC_HD inline int conv_int8_groups(int K) { return (K + 3) / 4; }
FDC_HD inline int8_t quantize_int8(float v, float scale) {
  float q = rintf(v / scale);  // round half to even, as std::nearbyint in the default mode
  q = q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q;
  return static_cast<int8_t>(q);
}

inline int64_t packed_conv_int8_bytes(int out_c, int in_c, int kernel) {
  return static_cast<int64_t>(conv_int8_groups(kernel * kernel * in_c)) * out_c * 4 + static_cast<int64_t>(out_c) * 4;
}

// Into `packed` (packed_conv_int8_bytes): the words, then the scales.
inline void pack_conv_int8(const float* oihw, int out_c, int in_c, int kernel, void* packed) {
  const int K = kernel * kernel * in_c, groups = conv_int8_groups(K);
  std::vector<float> kco(static_cast<size_t>(K) * out_c);
  pack_conv_kco(oihw, out_c, in_c, kernel, kco.data());
  auto* words = static_cast<uint32_t*>(packed);
  auto* scales = reinterpret_cast<float*>(words + static_cast<int64_t>(groups) * out_c);
  for (int co = 0; co < out_c; ++co) {
    float m = 0.0f;
    for (int k = 0; k < K; ++k) m = std::fmax(m, std::fabs(kco[static_cast<size_t>(k) * out_c + co]));
    scales[co] = m > 0.0f ? m / 127.0f : 1.0f;
    for (int g = 0; g < groups; ++g) {
      uint32_t w = 0;
      for (int j = 0; j < 4; ++j) {
        const int k = 4 * g + j;
        const int8_t q = k < K ? quantize_int8(kco[static_cast<size_t>(k) * out_c + co], scales[co]) : 0;
        w |= static_cast<uint32_t>(static_cast<uint8_t>(q)) << (8 * j);
      }
      words[static_cast<int64_t>(g) * out_c + co] = w;
    }
  }
}

// The per-image input scale.
inline float input_scale_int8(const float* x, int64_t count) {
  float m = 0.0f;
  for (int64_t i = 0; i < count; ++i) m = std::fmax(m, std::fabs(x[i]));
  return m > 0.0f ? m / 127.0f : 1.0f;
}

// The INT8 convolution on the host: the CPU twin of conv2d_int8 (tests).
inline void conv2d_int8_host(const fdc_conv2d_params& p, const float* x, const void* packed, const fdc_epilogue& e,
                             float* y) {
  const int K = conv_gemm_k(p), groups = conv_int8_groups(K);
  const auto* words = static_cast<const uint32_t*>(packed);
  const auto* wscale = reinterpret_cast<const float*>(words + static_cast<int64_t>(groups) * p.out_c);
  const int64_t image = static_cast<int64_t>(p.in_h) * p.in_w * p.in_c;
  std::vector<float> xscale(p.batch);
  for (int n = 0; n < p.batch; ++n) xscale[n] = input_scale_int8(x + n * image, image);
  const int64_t M = conv_gemm_m(p);
  for (int64_t m = 0; m < M; ++m) {
    const ConvRow r = conv_row(p, m);
    for (int co = 0; co < p.out_c; ++co) {
      int32_t acc = 0;
      for (int k = 0; k < K; ++k) {
        const int64_t i = conv_input_index(p, r, k);
        if (i < 0) continue;
        const auto qw = static_cast<int8_t>((words[static_cast<int64_t>(k / 4) * p.out_c + co] >> (8 * (k % 4))) & 0xff);
        acc += static_cast<int32_t>(quantize_int8(x[i], xscale[r.n])) * qw;
      }
      const float v = static_cast<float>(acc) * xscale[r.n] * wscale[co];
      y[m * p.out_c + co] = conv_epilogue(e, m, r.n, co, p.out_c, v);
    }
  }
}

}  // namespace fusediff::cuda
