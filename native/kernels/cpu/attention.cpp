// Attention softmax(Q K^T / sqrt(d)) V as two register-tiled GEMMs around a streaming
// ("online") softmax, with the queries of a block side by side in vector lanes.
//
// Phase 1 (per batch item and head, split over tokens) copies the head's values into scratch
// as rows padded to whole vectors, V[j][0 .. d_pad). Phase 2 works on blocks of kQueryBlock
// queries (one work item each) and walks the keys in blocks of kKeyBlock:
//   Qt[c][i]  = q_i[c] / sqrt(d)                  the block's queries, transposed
//   St[j][i]  = k_j . Qt[:, i]                    keys x queries tile: broadcast k_j[c] straight
//                                                 from the QKV rows, FMA with Qt[c][...]
//   m'[i]     = max(m[i], max_j St[j][i])         running maximum per query = per lane
//   a[i]      = exp(m[i] - m'[i])                 how much the earlier blocks shrink
//   Pt[j][i]  = exp(St[j][i] - m'[i])
//   l'[i]     = a[i] l[i] + sum_j Pt[j][i]        running denominator
//   O'[i][:]  = a[i] O[i][:] + sum_j Pt[j][i] V[j][:]
//                                                 queries x channels tile: broadcast Pt[j][i]
// and after the last block writes O[i][:] / l[i] (Milakov & Gimelshein 2018, "Online
// normalizer calculation for softmax"; Dao et al. 2022, FlashAttention). The key blocks are
// long (kKeyBlock, about 1,024 keys: 256 KiB of scores, a quarter of a Zen 4 core's L2), so
// the images these models are trained at (up to 32x32 = 1,024 tokens) take one block, which is
// the plain max-subtracted softmax compiled without the running output's loads and stores; a
// larger image streams, and its per-thread score scratch stays at one block instead of growing
// with the token count (4 MiB at 128x128). Short blocks measured slower: 96 or 288 keys cost
// 3-10 % from 64 to 4,096 tokens (the rescale and output-tile passes per block), 1,024 keys
// matched whole rows within the noise at 256, 1,024 and 4,096 tokens (fusediff_bench_kernels).
// Keeping queries in lanes means K is read in its own layout (no transposed copy) and the
// softmax needs no horizontal reductions. Register tiles follow the convolutions'
// (FUSEDIFF_TILE_PIXELS x FUSEDIFF_TILE_PANELS x 16 floats). Each output row is computed by
// exactly one work item: results do not depend on the thread count. Compiled once per ISA
// like conv2d.cpp.
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
// Keys per streaming step, in whole score tiles (see the top of the file for the size).
constexpr int kKeyBlock = (1024 + kKeysPerTile - 1) / kKeysPerTile * kKeysPerTile;

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

// St (n keys x kQueryBlock) = K Qt for keys j0 .. j0+n-1; m[v] gets each query's maximum
// score over them. `k_row(j)` points at key j's channel 0.
template <class KRow>
void scores(const Layout& l, KRow k_row, int j0, int n, const float* qt, float* st, vec (&m)[kQueryVecs]) {
  for (int v = 0; v < kQueryVecs; ++v) m[v] = splat(-INFINITY);
  for (int t0 = 0; t0 < n; t0 += kKeysPerTile) {
    const int nt = std::min(kKeysPerTile, n - t0);
    const float* k[kKeysPerTile];
    for (int r = 0; r < kKeysPerTile; ++r) k[r] = k_row(j0 + t0 + std::min(r, nt - 1));  // a short tile repeats its last key
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
    for (int r = 0; r < nt; ++r)
      for (int v = 0; v < kQueryVecs; ++v) {
        store(st + static_cast<int64_t>(t0 + r) * kQueryBlock + v * kVec, acc[r][v]);
        m[v] = vmax(m[v], acc[r][v]);
      }
  }
}

// The running softmax state of a query block: maximum and denominator per query (lane).
struct RunningSoftmax {
  vec max[kQueryVecs], sum[kQueryVecs];
  alignas(64) float rescale[kQueryBlock];  // a[i] of the latest step
  bool started = false;

  // In place: St (n x kQueryBlock) becomes Pt = exp(St - m'), with m' the new running maximum
  // from `block_max`; the sum and rescale factors are updated to match.
  // The loop runs on local copies: stores through `st` could alias the members, which would
  // keep the compiler from holding them in registers.
  void step(int n, float* st, const vec (&block_max)[kQueryVecs]) {
    vec m[kQueryVecs], l[kQueryVecs];
    for (int v = 0; v < kQueryVecs; ++v) {
      m[v] = started ? vmax(max[v], block_max[v]) : block_max[v];
      const vec a = started ? vexp(max[v] - m[v]) : splat(0.0f);
      store(rescale + v * kVec, a);
      l[v] = started ? sum[v] * a : splat(0.0f);
    }
    for (int j = 0; j < n; ++j)
      for (int v = 0; v < kQueryVecs; ++v) {
        float* s = st + static_cast<int64_t>(j) * kQueryBlock + v * kVec;
        const vec e = vexp(load(s) - m[v]);
        store(s, e);
        l[v] += e;
      }
    for (int v = 0; v < kQueryVecs; ++v) max[v] = m[v], sum[v] = l[v];
    started = true;
  }
};

// Where one streaming step's output tiles go. Every step but the first starts from the running
// O in `acc_rows` (rows of d_pad floats) times a[i]; every step but the last stores its sum
// there, and the last writes O / l to the output. A single key block does neither: it is the
// plain softmax, and the templates below compile it without the streaming's loads and stores.
struct OutputStep {
  const float* pt;        // Pt of this key block: n x kQueryBlock
  const float* vp;        // its padded value rows: n x d_pad
  int n;                  // keys in the block
  bool first, last;
  const float* rescale;   // a[i] (read unless first)
  float* acc_rows;        // the running O (unless first and last)
  const float* inv_sum;   // 1 / l[i] (read if last)
  float* out;             // the last step's destination rows
  int64_t out_stride;
};

// O rows i0 .. i0+R-1, channels c0 .. c0 + NV vectors, for one key block.
template <int R, int NV, bool kFirst, bool kLast>
void output_tile(const Layout& l, const OutputStep& s, int i0, int c0) {
  vec acc[R][NV];
  for (int i = 0; i < R; ++i)
    for (int u = 0; u < NV; ++u)
      acc[i][u] = kFirst ? splat(0.0f)
                         : load(s.acc_rows + static_cast<int64_t>(i0 + i) * l.d_pad + c0 + u * kVec) * s.rescale[i0 + i];
  const float* vp = s.vp + c0;
  const float* pt = s.pt + i0;
  for (int j = 0, n = s.n; j < n; ++j) {
    const float* vrow = vp + static_cast<int64_t>(j) * l.d_pad;
    const float* prow = pt + static_cast<int64_t>(j) * kQueryBlock;
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
    if constexpr (!kLast) {
      float* o = s.acc_rows + static_cast<int64_t>(i0 + i) * l.d_pad + c0;
      for (int u = 0; u < NV; ++u) store(o + u * kVec, acc[i][u]);
      continue;
    }
    float* o = s.out + (i0 + i) * s.out_stride;
    for (int u = 0; u < NV; ++u) {
      const int c = c0 + u * kVec;
      const vec y = acc[i][u] * s.inv_sum[i0 + i];
      if (c + kVec <= l.d) {
        store(o + c, y);
      } else {
        for (int lane = 0; c + lane < l.d; ++lane) o[c + lane] = y[lane];
      }
    }
  }
}

// output_tile<R, NV> for R = count (<= queries_for(NV)) and NV = vecs (<= kQueryVecs).
template <bool kFirst, bool kLast, int NV = kQueryVecs, int R = queries_for(NV)>
void output_tile_of(int vecs, int count, const Layout& l, const OutputStep& s, int i0, int c0) {
  if constexpr (NV >= 1) {
    if (vecs < NV) return output_tile_of<kFirst, kLast, NV - 1>(vecs, count, l, s, i0, c0);
    if constexpr (R >= 1) {
      if (count == R) return output_tile<R, NV, kFirst, kLast>(l, s, i0, c0);
      output_tile_of<kFirst, kLast, NV, R - 1>(vecs, count, l, s, i0, c0);
    }
  }
}

// One key block's share of O (nq x d) = Pt^T V, in tiles of channel blocks x query runs.
template <bool kFirst, bool kLast>
void weighted_values(const Layout& l, int nq, const OutputStep& s) {
  for (int c0 = 0; c0 < l.d_pad; c0 += kQueryVecs * kVec) {
    const int vecs = std::min(kQueryVecs, (l.d_pad - c0) / kVec);
    const int run = queries_for(vecs);
    for (int i0 = 0; i0 < nq; i0 += run) output_tile_of<kFirst, kLast>(vecs, std::min(run, nq - i0), l, s, i0, c0);
  }
}

void weighted_values(const Layout& l, int nq, const OutputStep& s) {
  if (s.first && s.last) return weighted_values<true, true>(l, nq, s);
  if (s.first) return weighted_values<true, false>(l, nq, s);
  if (s.last) return weighted_values<false, true>(l, nq, s);
  weighted_values<false, false>(l, nq, s);
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
    thread_local std::vector<float> st, qt, acc_rows;
    st.resize(static_cast<size_t>(std::min(p.tokens, kKeyBlock)) * kQueryBlock);
    qt.resize(static_cast<size_t>(l.d) * kQueryBlock);
    if (p.tokens > kKeyBlock) acc_rows.resize(static_cast<size_t>(kQueryBlock) * l.d_pad);
    for (int64_t item = begin; item < end; ++item) {
      const int bh = static_cast<int>(item / blocks), block = static_cast<int>(item % blocks);
      const int q0 = block * kQueryBlock, nq = std::min(kQueryBlock, p.tokens - q0);
      for (int i = 0; i < kQueryBlock; ++i) {
        const float* q = i < nq ? q_row(bh, q0 + i) : nullptr;
        for (int c = 0; c < l.d; ++c) qt[static_cast<size_t>(c) * kQueryBlock + i] = q ? q[c] * scale : 0.0f;
      }
      float* o = out + (static_cast<int64_t>(bh / p.heads) * p.tokens + q0) * p.channels +
                 static_cast<int64_t>(bh % p.heads) * l.d;
      RunningSoftmax softmax;
      alignas(64) float inv_sum[kQueryBlock];
      for (int j0 = 0; j0 < p.tokens; j0 += kKeyBlock) {
        const int n = std::min(kKeyBlock, p.tokens - j0);
        const bool first = j0 == 0, last = j0 + n == p.tokens;
        vec block_max[kQueryVecs];
        scores(l, [&](int j) { return q_row(bh, j) + p.channels; }, j0, n, qt.data(), st.data(), block_max);
        softmax.step(n, st.data(), block_max);
        if (last)
          for (int v = 0; v < kQueryVecs; ++v) store(inv_sum + v * kVec, 1.0f / softmax.sum[v]);
        const OutputStep step{st.data(), scratch + bh * l.per_head() + static_cast<int64_t>(j0) * l.d_pad,
                              n,         first,
                              last,      softmax.rescale,
                              acc_rows.data(), inv_sum,
                              o,         p.channels};
        weighted_values(l, nq, step);
      }
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
