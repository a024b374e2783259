// Attention softmax(Q K^T / sqrt(d)) V as two register-tiled GEMMs around a softmax, with
// the queries of a block side by side in vector lanes.
//
// Phase 1 (per batch item and head, split over tokens) copies the head's values into scratch
// as rows padded to whole vectors, V[j][0 .. d_pad). Phase 2 works on blocks of kQueryBlock
// queries (one work item each):
//   Qt[c][i]  = q_i[c] / sqrt(d)                  the block's queries, transposed
//   St[j][i]  = k_j . Qt[:, i]                    keys x queries tile: broadcast k_j[c] straight
//                                                 from the QKV rows, FMA with Qt[c][...]
//   Pt[j][i]  = exp(St[j][i] - max_j St[j][i])    per query = per lane: max, exp and the sum
//                                                 are plain vector operations
//   O[i][:]   = sum_j Pt[j][i] V[j][:] / sum_j Pt[j][i]
//                                                 queries x channels tile: broadcast Pt[j][i]
// Keeping queries in lanes means K is read in its own layout (no transposed copy) and the
// softmax needs no horizontal reductions. Rows of scores are whole: a streaming ("online",
// FlashAttention-style) softmax over 96- or 288-key blocks, which keeps a block's scores in L1
// and rescales the running output per block, measured 3-10 % slower here from 64 to 4,096
// tokens and no faster at 4,096 tokens with 256-wide heads (branch attention-streaming); the
// hardware prefetchers stream whole rows from L2 well, even where 4,096 x 64 scores fill it.
// Register tiles follow the convolutions' (FUSEDIFF_TILE_PIXELS x FUSEDIFF_TILE_PANELS x 16
// floats). Each output row is computed by exactly one work item: results do not depend on the
// thread count. Compiled once per ISA like conv2d.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int kQueryVecs = FUSEDIFF_TILE_PANELS * 16 / kVec;  // vectors of queries per block
constexpr int kQueryBlock = kQueryVecs * kVec;                 // queries per work item
constexpr int kKeysPerTile = FUSEDIFF_TILE_PIXELS;             // score tile: keys x kQueryVecs
constexpr int kAccumulators = kKeysPerTile * kQueryVecs;

// Queries per output tile of NV channel vectors: the same accumulator count, at most 12.
constexpr int queries_for(int nv) { return nv > 0 ? std::min(12, kAccumulators / nv) : 1; }

struct Layout {
  int tokens;
  int d, d_pad;  // head size, and padded to whole vectors
  int64_t per_head() const { return static_cast<int64_t>(tokens) * d_pad; }  // floats of padded values
};

Layout layout(const AttentionParams& p) {
  const int d = p.channels / p.heads;
  return {p.tokens, d, (d + kVec - 1) / kVec * kVec};
}

// St (tokens x kQueryBlock) = K Qt for all keys; m[v] gets each query's maximum score.
// `k_row(j)` points at key j's channel 0.
template <class KRow>
void scores(const Layout& l, KRow k_row, const float* qt, float* st, vec (&m)[kQueryVecs]) {
  for (int v = 0; v < kQueryVecs; ++v) m[v] = splat(-INFINITY);
  for (int j0 = 0; j0 < l.tokens; j0 += kKeysPerTile) {
    const int n = std::min(kKeysPerTile, l.tokens - j0);
    const float* k[kKeysPerTile];
    for (int r = 0; r < kKeysPerTile; ++r) k[r] = k_row(j0 + std::min(r, n - 1));  // a short tile repeats its last key
    vec acc[kKeysPerTile][kQueryVecs] = {};
    for (int c = 0; c < l.d; ++c) {
      vec qv[kQueryVecs];
#pragma GCC unroll 4
      for (int v = 0; v < kQueryVecs; ++v) qv[v] = load(qt + static_cast<int64_t>(c) * kQueryBlock + v * kVec);
#pragma GCC unroll 8
      for (int r = 0; r < kKeysPerTile; ++r) {
        const float a = k[r][c];
#pragma GCC unroll 4
        for (int v = 0; v < kQueryVecs; ++v) acc[r][v] += qv[v] * a;
      }
    }
    for (int r = 0; r < n; ++r)
      for (int v = 0; v < kQueryVecs; ++v) {
        store(st + static_cast<int64_t>(j0 + r) * kQueryBlock + v * kVec, acc[r][v]);
        m[v] = vmax(m[v], acc[r][v]);
      }
  }
}

// In place: St becomes exp(St - max) column by column; inv_sum[i] = 1 / sum_j of column i.
void softmax_columns(const Layout& l, float* st, const vec (&m)[kQueryVecs], float* inv_sum) {
  vec sum[kQueryVecs] = {};
  for (int j = 0; j < l.tokens; ++j)
    for (int v = 0; v < kQueryVecs; ++v) {
      float* s = st + static_cast<int64_t>(j) * kQueryBlock + v * kVec;
      const vec e = vexp(load(s) - m[v]);
      store(s, e);
      sum[v] += e;
    }
  for (int v = 0; v < kQueryVecs; ++v) store(inv_sum + v * kVec, 1.0f / sum[v]);
}

// O rows i0 .. i0+R-1, channels c0 .. c0 + NV vectors: sum_j Pt[j][i] V[j][c] * inv_sum[i].
template <int R, int NV>
void output_tile(const Layout& l, const float* pt, const float* vp, const float* inv_sum, int i0, int c0, float* out,
                 int64_t out_stride) {
  vec acc[R][NV] = {};
  for (int j = 0; j < l.tokens; ++j) {
    const float* vrow = vp + static_cast<int64_t>(j) * l.d_pad + c0;
    const float* prow = pt + static_cast<int64_t>(j) * kQueryBlock + i0;
    vec vv[NV];
#pragma GCC unroll 4
    for (int u = 0; u < NV; ++u) vv[u] = load(vrow + u * kVec);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const float a = prow[i];
#pragma GCC unroll 4
      for (int u = 0; u < NV; ++u) acc[i][u] += vv[u] * a;
    }
  }
  for (int i = 0; i < R; ++i) {
    float* o = out + (i0 + i) * out_stride;
    for (int u = 0; u < NV; ++u) {
      const int c = c0 + u * kVec;
      const vec y = acc[i][u] * inv_sum[i0 + i];
      if (c + kVec <= l.d) {
        store(o + c, y);
      } else {
        for (int lane = 0; c + lane < l.d; ++lane) o[c + lane] = y[lane];
      }
    }
  }
}

// output_tile<R, NV> for R = count (<= queries_for(NV)) and NV = vecs (<= kQueryVecs).
template <int NV = kQueryVecs, int R = queries_for(NV)>
void output_tile_of(int vecs, int count, const Layout& l, const float* pt, const float* vp, const float* inv_sum,
                    int i0, int c0, float* out, int64_t out_stride) {
  if constexpr (NV >= 1) {
    if (vecs < NV) return output_tile_of<NV - 1>(vecs, count, l, pt, vp, inv_sum, i0, c0, out, out_stride);
    if constexpr (R >= 1) {
      if (count == R) return output_tile<R, NV>(l, pt, vp, inv_sum, i0, c0, out, out_stride);
      output_tile_of<NV, R - 1>(vecs, count, l, pt, vp, inv_sum, i0, c0, out, out_stride);
    }
  }
}

// O (nq x d) = Pt^T V, in tiles of channel blocks x query runs.
void weighted_values(const Layout& l, int nq, const float* pt, const float* vp, const float* inv_sum, float* out,
                     int64_t out_stride) {
  for (int c0 = 0; c0 < l.d_pad; c0 += kQueryVecs * kVec) {
    const int vecs = std::min(kQueryVecs, (l.d_pad - c0) / kVec);
    const int run = queries_for(vecs);
    for (int i0 = 0; i0 < nq; i0 += run)
      output_tile_of(vecs, std::min(run, nq - i0), l, pt, vp, inv_sum, i0, c0, out, out_stride);
  }
}

}  // namespace

int64_t attention_scratch_floats(const AttentionParams& p) { return static_cast<int64_t>(p.batch) * p.heads * layout(p).per_head(); }

void attention(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool) {
  const Layout l = layout(p);
  const int64_t stride = 3 * static_cast<int64_t>(p.channels);
  const int heads = p.batch * p.heads;
  // Row j of the head's queries; keys and values are p.channels and 2 p.channels further.
  auto q_row = [&](int bh, int j) {
    return qkv + (static_cast<int64_t>(bh / p.heads) * p.tokens + j) * stride + static_cast<int64_t>(bh % p.heads) * l.d;
  };
  // Phase 1: padded value rows of every (batch item, head).
  constexpr int kChunk = 64;
  const int chunks = (p.tokens + kChunk - 1) / kChunk;
  pool.parallel_for(static_cast<int64_t>(heads) * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int bh = static_cast<int>(item / chunks), chunk = static_cast<int>(item % chunks);
      float* vp = scratch + bh * l.per_head();
      for (int j = chunk * kChunk; j < std::min(p.tokens, (chunk + 1) * kChunk); ++j) {
        float* dst = vp + static_cast<int64_t>(j) * l.d_pad;
        std::memcpy(dst, q_row(bh, j) + 2 * p.channels, static_cast<size_t>(l.d) * sizeof(float));
        std::fill(dst + l.d, dst + l.d_pad, 0.0f);
      }
    }
  });
  // Phase 2: blocks of queries.
  const int blocks = (p.tokens + kQueryBlock - 1) / kQueryBlock;
  const float scale = 1.0f / std::sqrt(static_cast<float>(l.d));
  pool.parallel_for(static_cast<int64_t>(heads) * blocks, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> st, qt;
    st.resize(static_cast<size_t>(p.tokens) * kQueryBlock);
    qt.resize(static_cast<size_t>(l.d) * kQueryBlock);
    for (int64_t item = begin; item < end; ++item) {
      const int bh = static_cast<int>(item / blocks), block = static_cast<int>(item % blocks);
      const int q0 = block * kQueryBlock, nq = std::min(kQueryBlock, p.tokens - q0);
      for (int i = 0; i < kQueryBlock; ++i) {
        const float* q = i < nq ? q_row(bh, q0 + i) : nullptr;
        for (int c = 0; c < l.d; ++c) qt[static_cast<size_t>(c) * kQueryBlock + i] = q ? q[c] * scale : 0.0f;
      }
      vec m[kQueryVecs];
      scores(l, [&](int j) { return q_row(bh, j) + p.channels; }, qt.data(), st.data(), m);
      alignas(64) float inv_sum[kQueryBlock];
      softmax_columns(l, st.data(), m, inv_sum);
      float* o = out + (static_cast<int64_t>(bh / p.heads) * p.tokens + q0) * p.channels +
                 static_cast<int64_t>(bh % p.heads) * l.d;
      weighted_values(l, nq, st.data(), scratch + bh * l.per_head(), inv_sum, o, p.channels);
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
