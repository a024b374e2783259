// Threaded attention: the reference row kernel, split over (batch, head, query block).
// Every output row is computed by exactly one work item, so the result does not depend on
// the number of threads.
#include <vector>

#include "kernels/cpu/cpu_kernels.h"
#include "kernels/reference/reference.h"

namespace fusediff::kernels::cpu {

void attention(const AttentionParams& p, const float* qkv, float* out, ThreadPool& pool) {
  constexpr int kQueryBlock = 32;
  const int blocks = (p.tokens + kQueryBlock - 1) / kQueryBlock;
  const int64_t items = static_cast<int64_t>(p.batch) * p.heads * blocks;
  pool.parallel_for(items, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(p.tokens);
    for (int64_t item = begin; item < end; ++item) {
      const int block = static_cast<int>(item % blocks);
      const int head = static_cast<int>(item / blocks % p.heads);
      const int b = static_cast<int>(item / blocks / p.heads);
      const int q0 = block * kQueryBlock;
      reference::attention_rows(p, qkv, out, b, head, q0, std::min(p.tokens, q0 + kQueryBlock), scores.data());
    }
  });
}

}  // namespace fusediff::kernels::cpu
