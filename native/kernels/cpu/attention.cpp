// Attention softmax(Q K^T / sqrt(d)) V as two register-tiled GEMMs around a softmax.
//
// Phase 1 (per batch item and head, split over key ranges) copies the head's keys
// transposed, Kt[c][j], and its values, V[j][c] with c padded to whole vectors, into
// scratch. Phase 2 (per batch item, head and block of kQueries queries):
//   S[i][j] = (q_i / sqrt(d)) . k_j        queries x keys tile: broadcast q_i[c], FMA with Kt[c][j..]
//   P[i][j] = exp(S[i][j] - max_j S[i][j])  vectorised exp; the row sum is kept
//   O[i][:] = sum_j P[i][j] V[j][:] / sum_j P[i][j]
// Rows of scores are whole (tokens <= a few thousand here), so no streaming rescale is
// needed. Each output row is computed by exactly one work item: results do not depend on
// the thread count. Compiled once per ISA like conv2d.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/cpu/vec.h"

namespace fusediff::kernels::FUSEDIFF_ISA {
namespace {

constexpr int kQueries = 8;     // queries per work item and register tile
constexpr int kKeyVecs = 2;     // key vectors per score tile: kQueries x 2 accumulators
constexpr int kKeyBlock = kKeyVecs * kVec;

struct Layout {
  int d, d_pad, t_pad;       // head size, head size padded to whole vectors, tokens padded to key blocks
  int64_t kt_floats, v_floats;
  int64_t per_head() const { return kt_floats + v_floats; }
};

Layout layout(const AttentionParams& p) {
  Layout l;
  l.d = p.channels / p.heads;
  l.d_pad = (l.d + kVec - 1) / kVec * kVec;
  l.t_pad = (p.tokens + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  l.kt_floats = static_cast<int64_t>(l.d) * l.t_pad;
  l.v_floats = static_cast<int64_t>(l.t_pad) * l.d_pad;
  return l;
}

// Scores of up to kQueries queries (rows of q, pre-scaled) against all keys.
void scores(const Layout& l, int nq, const float* q, const float* kt, float* s) {
  for (int j0 = 0; j0 < l.t_pad; j0 += kKeyBlock) {
    vec acc[kQueries][kKeyVecs] = {};
    for (int c = 0; c < l.d; ++c) {
      const float* krow = kt + static_cast<int64_t>(c) * l.t_pad + j0;
      vec kv[kKeyVecs];
      for (int v = 0; v < kKeyVecs; ++v) kv[v] = load(krow + v * kVec);
#pragma GCC unroll 8
      for (int i = 0; i < kQueries; ++i) {
        const float a = q[i * l.d + c];
        for (int v = 0; v < kKeyVecs; ++v) acc[i][v] += kv[v] * a;
      }
    }
    for (int i = 0; i < nq; ++i)
      for (int v = 0; v < kKeyVecs; ++v) store(s + static_cast<int64_t>(i) * l.t_pad + j0 + v * kVec, acc[i][v]);
  }
}

// In place: row i of s becomes exp(s - max) over the real keys (padding -> 0); returns 1/sum.
float softmax_row(float* s, int tokens, int t_pad) {
  for (int j = tokens; j < t_pad; ++j) s[j] = -INFINITY;
  vec m = splat(-INFINITY);
  for (int j = 0; j < t_pad; j += kVec) m = vmax(m, load(s + j));
  const float max_score = hmax(m);
  vec sum = splat(0.0f);
  for (int j = 0; j < t_pad; j += kVec) {
    vec e = vexp(load(s + j) - max_score);
    if (j + kVec > tokens)  // the padded keys must count for nothing
      for (int lane = 0; lane < kVec; ++lane) e[lane] = j + lane < tokens ? e[lane] : 0.0f;
    store(s + j, e);
    sum += e;
  }
  return 1.0f / hsum(sum);
}

// O (nq x d) = P (nq x tokens) V (tokens x d_pad), rows scaled by inv_sum.
void weighted_values(const Layout& l, int nq, int tokens, const float* p, const float* v, const float* inv_sum,
                     float* out, int64_t out_stride) {
  constexpr int kOutVecs = 2;
  for (int c0 = 0; c0 < l.d_pad; c0 += kOutVecs * kVec) {
    const int nv = std::min(kOutVecs, (l.d_pad - c0) / kVec);
    vec acc[kQueries][kOutVecs] = {};
    for (int j = 0; j < tokens; ++j) {
      const float* vrow = v + static_cast<int64_t>(j) * l.d_pad + c0;
      vec vv[kOutVecs];
      for (int u = 0; u < kOutVecs; ++u) vv[u] = u < nv ? load(vrow + u * kVec) : vec{};
#pragma GCC unroll 8
      for (int i = 0; i < kQueries; ++i) {
        const float a = p[static_cast<int64_t>(i) * l.t_pad + j];
        for (int u = 0; u < kOutVecs; ++u) acc[i][u] += vv[u] * a;
      }
    }
    for (int i = 0; i < nq; ++i)
      for (int u = 0; u < nv; ++u) {
        float lanes[kVec];
        store(lanes, acc[i][u] * inv_sum[i]);
        const int c = c0 + u * kVec;
        for (int lane = 0; lane < kVec && c + lane < l.d; ++lane) out[i * out_stride + c + lane] = lanes[lane];
      }
  }
}

}  // namespace

int64_t attention_scratch_floats(const AttentionParams& p) {
  const Layout l = layout(p);
  return static_cast<int64_t>(p.batch) * p.heads * l.per_head();
}

void attention(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool) {
  const Layout l = layout(p);
  const int64_t stride = 3 * static_cast<int64_t>(p.channels);
  const int heads = p.batch * p.heads;
  // Phase 1: transposed keys and padded values of every (batch item, head).
  constexpr int kChunk = 64;
  const int chunks = (l.t_pad + kChunk - 1) / kChunk;
  pool.parallel_for(static_cast<int64_t>(heads) * chunks, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int bh = static_cast<int>(item / chunks), chunk = static_cast<int>(item % chunks);
      const int b = bh / p.heads, h = bh % p.heads;
      float* kt = scratch + bh * l.per_head();
      float* v = kt + l.kt_floats;
      const float* base = qkv + static_cast<int64_t>(b) * p.tokens * stride + h * l.d;
      for (int j = chunk * kChunk; j < std::min(l.t_pad, (chunk + 1) * kChunk); ++j) {
        const bool real = j < p.tokens;
        for (int c = 0; c < l.d; ++c) kt[static_cast<int64_t>(c) * l.t_pad + j] = real ? base[j * stride + p.channels + c] : 0.0f;
        float* vrow = v + static_cast<int64_t>(j) * l.d_pad;
        for (int c = 0; c < l.d_pad; ++c) vrow[c] = real && c < l.d ? base[j * stride + 2 * p.channels + c] : 0.0f;
      }
    }
  });
  // Phase 2: blocks of queries.
  const int blocks = (p.tokens + kQueries - 1) / kQueries;
  const float scale = 1.0f / std::sqrt(static_cast<float>(l.d));
  pool.parallel_for(static_cast<int64_t>(heads) * blocks, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> s, q;
    s.resize(static_cast<size_t>(kQueries) * l.t_pad);
    q.assign(static_cast<size_t>(kQueries) * l.d, 0.0f);
    for (int64_t item = begin; item < end; ++item) {
      const int bh = static_cast<int>(item / blocks), block = static_cast<int>(item % blocks);
      const int b = bh / p.heads, h = bh % p.heads;
      const float* kt = scratch + bh * l.per_head();
      const float* v = kt + l.kt_floats;
      const int q0 = block * kQueries, nq = std::min(kQueries, p.tokens - q0);
      const float* base = qkv + static_cast<int64_t>(b) * p.tokens * stride + h * l.d;
      for (int i = 0; i < kQueries; ++i)
        for (int c = 0; c < l.d; ++c) q[i * l.d + c] = i < nq ? base[(q0 + i) * stride + c] * scale : 0.0f;
      scores(l, nq, q.data(), kt, s.data());
      float inv_sum[kQueries] = {};
      for (int i = 0; i < nq; ++i) inv_sum[i] = softmax_row(s.data() + static_cast<int64_t>(i) * l.t_pad, p.tokens, l.t_pad);
      for (int i = nq; i < kQueries; ++i) std::fill_n(s.data() + static_cast<int64_t>(i) * l.t_pad, l.t_pad, 0.0f);
      float* o = out + (static_cast<int64_t>(b) * p.tokens + q0) * p.channels + h * l.d;
      weighted_values(l, nq, p.tokens, s.data(), v, inv_sum, o, p.channels);
    }
  });
}

}  // namespace fusediff::kernels::FUSEDIFF_ISA
