// Reference attention: for each query, the full row of scores, a max-subtracted softmax,
// and the weighted sum of values — the textbook formula, one query at a time.
#include <cmath>
#include <vector>

#include "kernels/reference/reference.h"

namespace fusediff::kernels::reference {

namespace {

// Queries [q_begin, q_end) of one batch item and head; `scores` holds p.tokens floats.
void attention_rows(const AttentionParams& p, const float* qkv, float* out, int b, int head, int q_begin,
                    int q_end, float* scores) {
  const int d = p.channels / p.heads;
  const int64_t stride = 3 * static_cast<int64_t>(p.channels);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const float* base = qkv + static_cast<int64_t>(b) * p.tokens * stride + head * d;
  for (int i = q_begin; i < q_end; ++i) {
    const float* q = base + i * stride;
    float max_score = -INFINITY;
    for (int j = 0; j < p.tokens; ++j) {
      const float* k = base + j * stride + p.channels;
      float s = 0.0f;
      for (int c = 0; c < d; ++c) s += q[c] * k[c];
      scores[j] = s * scale;
      max_score = std::fmax(max_score, scores[j]);
    }
    double sum = 0.0;
    for (int j = 0; j < p.tokens; ++j) {
      scores[j] = std::exp(scores[j] - max_score);
      sum += scores[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + (static_cast<int64_t>(b) * p.tokens + i) * p.channels + head * d;
    for (int c = 0; c < d; ++c) o[c] = 0.0f;
    for (int j = 0; j < p.tokens; ++j) {
      const float* v = base + j * stride + 2 * p.channels;
      const float w = scores[j] * inv;
      for (int c = 0; c < d; ++c) o[c] += w * v[c];
    }
  }
}

}  // namespace

int64_t attention_scratch_floats(const AttentionParams&) { return 0; }

void attention(const AttentionParams& p, const float* qkv, float* out, float*, ThreadPool&) {
  std::vector<float> scores(p.tokens);
  for (int b = 0; b < p.batch; ++b)
    for (int h = 0; h < p.heads; ++h) attention_rows(p, qkv, out, b, h, 0, p.tokens, scores.data());
}

}  // namespace fusediff::kernels::reference
