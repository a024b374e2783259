// Plain implementations of the kernel table's ops (see kernels.h for their definitions).
#pragma once
#include "kernels/kernels.h"

namespace fusediff::kernels::reference {

void pack_conv(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);
void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
            ThreadPool& pool);
void attention(const AttentionParams& p, const float* qkv, float* out, ThreadPool& pool);

// Queries [q_begin, q_end) of one batch item and head; `scores` holds p.tokens floats.
// The threaded attention splits its work into calls of this.
void attention_rows(const AttentionParams& p, const float* qkv, float* out, int b, int head, int q_begin,
                    int q_end, float* scores);

}  // namespace fusediff::kernels::reference
