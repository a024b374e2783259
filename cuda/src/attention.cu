// Multi-head attention over fused QKV, as kernels/reference/attention.cpp:
//
//   for each image b and head h (head_dim d = C / heads, features [h*d, (h+1)*d)):
//     S = Q K^T / sqrt(d)                 Q, K, V: [tokens][d] slices of qkv [tokens][3C]
//     P = softmax(S) along each row       (max-subtracted; the row sum in float64)
//     O = P V                             out [tokens][C], head h at columns h*d
//
// Two implementations:
//  - three passes (the default): a batched SGEMM (64 x 64 tiles, 4 x 4 values per thread,
//    float32 FMA) for S into a scratch buffer [images in chunk][heads][T][T], a row softmax,
//    and the same SGEMM for O. Images go in chunks so that the scratch stays bounded.
//  - fused (p.fused, head_dim <= 256): one warp per query, eight queries per block sharing
//    K/V tiles in shared memory, an online softmax (running max m, sum l, rescaled
//    accumulator), no scratch:
//        s = q.k_j / sqrt(d);  m' = max(m, s);  l = l e^(m - m') + e^(s - m');
//        acc = acc e^(m - m') + e^(s - m') v_j;   o = acc / l
#include <cmath>

#include "ops.h"

namespace fusediff::cuda {
namespace {

constexpr int64_t kScratchCap = int64_t{1} << 30;  // bytes of scores per chunk (at least one image)

// A strided view: element (z, i, k) at p + (z / heads) * sb + (z % heads) * sh + i * si + k * sk.
struct View {
  const float* p;
  int64_t sb, sh, si, sk;
  __device__ float at(int z, int heads, int64_t i, int64_t k) const {
    return p[(z / heads) * sb + (z % heads) * sh + i * si + k * sk];
  }
};

// C(z, i, j) = alpha * sum_k A(z, i, k) * B(z, k, j), for i < M, j < N; C written with strides
// like View. Block: 16 x 16 threads, tile 64 x 64, K step 16, each thread a 4 x 4 patch
// (rows ty + 16a, columns tx + 16b).
constexpr int TB = 64, TK = 16;
__global__ void __launch_bounds__(256) batched_gemm(int M, int N, int K, int heads, float alpha, View A, View B,
                                                      float* C, int64_t csb, int64_t csh, int64_t csi, int64_t csj) {
  __shared__ float As[TK][TB + 1];  // As[k][i]
  __shared__ float Bs[TK][TB + 1];  // Bs[k][j]
  const int z = blockIdx.z;
  const int i0 = blockIdx.y * TB, j0 = blockIdx.x * TB;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < K; k0 += TK) {
    for (int e = threadIdx.x; e < TB * TK; e += 256) {
      const int r = e / TK, k = e % TK;  // A: row r of the tile, column k
      As[k][r] = (i0 + r < M && k0 + k < K) ? A.at(z, heads, i0 + r, k0 + k) : 0.0f;
      const int kb = e / TB, c = e % TB;  // B: row kb, column c
      Bs[kb][c] = (k0 + kb < K && j0 + c < N) ? B.at(z, heads, k0 + kb, j0 + c) : 0.0f;
    }
    __syncthreads();
    for (int k = 0; k < TK; ++k)
      for (int a = 0; a < 4; ++a)
        for (int b = 0; b < 4; ++b) acc[a][b] = fmaf(As[k][ty + 16 * a], Bs[k][tx + 16 * b], acc[a][b]);
    __syncthreads();
  }
  float* Cz = C + (z / heads) * csb + (z % heads) * csh;
  for (int a = 0; a < 4; ++a)
    for (int b = 0; b < 4; ++b) {
      const int i = i0 + ty + 16 * a, j = j0 + tx + 16 * b;
      if (i < M && j < N) Cz[i * csi + j * csj] = alpha * acc[a][b];
    }
}

// Row softmax in place: one block per row of `n` scores.
constexpr int kSoftmaxThreads = 256;
__global__ void __launch_bounds__(kSoftmaxThreads) softmax_rows(float* s, int n) {
  __shared__ float fmax_part[kSoftmaxThreads / 32];
  __shared__ double sum_part[kSoftmaxThreads / 32];
  float* row = s + static_cast<int64_t>(blockIdx.x) * n;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < n; j += kSoftmaxThreads) m = fmaxf(m, row[j]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if (lane == 0) fmax_part[warp] = m;
  __syncthreads();
  m = fmax_part[0];
  for (int i = 1; i < kSoftmaxThreads / 32; ++i) m = fmaxf(m, fmax_part[i]);
  double sum = 0.0;
  for (int j = threadIdx.x; j < n; j += kSoftmaxThreads) {
    const float e = expf(row[j] - m);
    row[j] = e;
    sum += e;
  }
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (lane == 0) sum_part[warp] = sum;
  __syncthreads();
  double total = 0.0;
  for (int i = 0; i < kSoftmaxThreads / 32; ++i) total += sum_part[i];
  const float inv = static_cast<float>(1.0 / total);
  for (int j = threadIdx.x; j < n; j += kSoftmaxThreads) row[j] *= inv;
}

// --- Fused --------------------------------------------------------------------------------
constexpr int kFusedWarps = 8;     // queries per block
constexpr int kFusedKeys = 16;     // keys per shared-memory tile
constexpr int kFusedPerLane = 8;   // head_dim <= 32 * 8 = 256
__global__ void __launch_bounds__(kFusedWarps * 32)
    attention_fused_kernel(fdc_attention_params p, const float* __restrict__ qkv, float* __restrict__ out) {
  extern __shared__ float tile[];  // K [kFusedKeys][d], then V [kFusedKeys][d]
  const int d = p.channels / p.heads;
  const int T = p.tokens;
  const int h = blockIdx.y, b = blockIdx.z;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int i = blockIdx.x * kFusedWarps + warp;  // this warp's query
  const int64_t row = 3 * static_cast<int64_t>(p.channels);
  const float* base = qkv + static_cast<int64_t>(b) * T * row + h * d;
  const float scale = 1.0f / sqrtf(static_cast<float>(d));
  float q[kFusedPerLane], acc[kFusedPerLane];
  for (int e = 0; e < kFusedPerLane; ++e) {
    const int c = lane + 32 * e;
    q[e] = (i < T && c < d) ? base[i * row + c] : 0.0f;
    acc[e] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  float* Ks = tile;
  float* Vs = tile + kFusedKeys * d;
  for (int j0 = 0; j0 < T; j0 += kFusedKeys) {
    const int keys = min(kFusedKeys, T - j0);
    for (int e = threadIdx.x; e < keys * d; e += kFusedWarps * 32) {
      const int j = e / d, c = e % d;
      Ks[e] = base[(j0 + j) * row + p.channels + c];
      Vs[e] = base[(j0 + j) * row + 2 * p.channels + c];
    }
    __syncthreads();
    if (i < T) {
      for (int j = 0; j < keys; ++j) {
        float part = 0.0f;
        for (int e = 0; e < kFusedPerLane; ++e) {
          const int c = lane + 32 * e;
          if (c < d) part = fmaf(q[e], Ks[j * d + c], part);
        }
        for (int o = 16; o > 0; o >>= 1) part += __shfl_xor_sync(0xffffffffu, part, o);
        const float s = part * scale;
        const float m_new = fmaxf(m, s);
        const float correction = expf(m - m_new);  // 0 on the first key (m = -inf)
        const float weight = expf(s - m_new);
        l = l * correction + weight;
        for (int e = 0; e < kFusedPerLane; ++e) {
          const int c = lane + 32 * e;
          acc[e] = acc[e] * correction + (c < d ? weight * Vs[j * d + c] : 0.0f);
        }
        m = m_new;
      }
    }
    __syncthreads();
  }
  if (i < T) {
    float* o = out + (static_cast<int64_t>(b) * T + i) * p.channels + h * d;
    const float inv = 1.0f / l;
    for (int e = 0; e < kFusedPerLane; ++e) {
      const int c = lane + 32 * e;
      if (c < d) o[c] = acc[e] * inv;
    }
  }
}

bool use_fused(const fdc_attention_params& p) { return p.fused && p.channels / p.heads <= 32 * kFusedPerLane; }

int64_t chunk_images(const fdc_attention_params& p) {
  const int64_t per_image = static_cast<int64_t>(p.heads) * p.tokens * p.tokens * static_cast<int64_t>(sizeof(float));
  int64_t chunk = kScratchCap / (per_image > 0 ? per_image : 1);
  if (chunk < 1) chunk = 1;
  if (chunk > 65535 / p.heads) chunk = 65535 / p.heads;  // grid z = images x heads
  return chunk < p.batch ? chunk : p.batch;
}

}  // namespace

int64_t attention_scratch_bytes(const fdc_attention_params& p) {
  if (use_fused(p)) return 0;
  return chunk_images(p) * p.heads * static_cast<int64_t>(p.tokens) * p.tokens * static_cast<int64_t>(sizeof(float));
}

int attention(fdc_context* ctx, const fdc_attention_params& p, const float* qkv, float* out, void* scratch) {
  const int d = p.channels / p.heads;
  if (use_fused(p)) {
    const dim3 grid(static_cast<unsigned>((p.tokens + kFusedWarps - 1) / kFusedWarps), static_cast<unsigned>(p.heads),
                    static_cast<unsigned>(p.batch));
    const size_t smem = 2 * kFusedKeys * static_cast<size_t>(d) * sizeof(float);  // <= 32 KiB
    attention_fused_kernel<<<grid, kFusedWarps * 32, smem, ctx->stream>>>(p, qkv, out);
    FDC_LAUNCHED("attention (fused)");
    return FDC_OK;
  }
  const int T = p.tokens;
  const int64_t row = 3 * static_cast<int64_t>(p.channels);  // qkv floats per token
  const int64_t image = static_cast<int64_t>(T) * row;
  const int64_t scores_head = static_cast<int64_t>(T) * T;
  const float scale = 1.0f / sqrtf(static_cast<float>(d));
  float* s = static_cast<float*>(scratch);
  const int64_t chunk = chunk_images(p);
  const unsigned tiles = static_cast<unsigned>((T + TB - 1) / TB);
  for (int64_t b0 = 0; b0 < p.batch; b0 += chunk) {
    const int images = static_cast<int>(p.batch - b0 < chunk ? p.batch - b0 : chunk);
    const unsigned z = static_cast<unsigned>(images * p.heads);
    const float* base = qkv + b0 * image;
    // S(z, i, j) = scale * sum_c Q(i, c) K(j, c): A = Q [T][d], B(c, j) = K(j, c).
    const View q{base, image, d, row, 1};
    const View kt{base + p.channels, image, d, 1, row};
    batched_gemm<<<dim3(tiles, tiles, z), 256, 0, ctx->stream>>>(T, T, d, p.heads, scale, q, kt, s,
                                                                 p.heads * scores_head, scores_head, T, 1);
    FDC_LAUNCHED("attention scores");
    softmax_rows<<<static_cast<unsigned>(z * static_cast<int64_t>(T)), kSoftmaxThreads, 0, ctx->stream>>>(s, T);
    FDC_LAUNCHED("attention softmax");
    // O(z, i, c) = sum_j P(i, j) V(j, c), written to out[b][i][h*d + c].
    const View pv{s, p.heads * scores_head, scores_head, T, 1};
    const View v{base + 2 * p.channels, image, d, row, 1};
    const int64_t out_image = static_cast<int64_t>(T) * p.channels;
    batched_gemm<<<dim3(static_cast<unsigned>((d + TB - 1) / TB), tiles, z), 256, 0, ctx->stream>>>(
        T, d, T, p.heads, 1.0f, pv, v, out + b0 * out_image, out_image, d, p.channels, 1);
    FDC_LAUNCHED("attention values");
  }
  return FDC_OK;
}

}  // namespace fusediff::cuda
