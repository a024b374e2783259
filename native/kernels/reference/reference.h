// Plain implementations of the kernel table's ops (see kernels.h for their definitions).
#pragma once
#include "kernels/kernels.h"

namespace fusediff::kernels::reference {

void pack_conv(const float* oihw, int out_c, int in_c, int kernel, ConvAlgorithm algorithm, PackedConv* out);
void conv2d(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
            ThreadPool& pool);
int64_t attention_scratch_floats(const AttentionParams& p);  // 0: the reference needs none
void attention(const AttentionParams& p, const float* qkv, float* out, float* scratch, ThreadPool& pool);
int64_t group_norm_scratch_floats(const GroupNormParams& p);  // 0: the reference needs none
void group_norm(const GroupNormParams& p, const float* x, float* y, float* scratch, ThreadPool& pool);
void pack_conv_int8(const int8_t* q, const float* scale, int out_c, int in_c, int kernel, PackedConv* out);
void pack_conv_bf16(const float* oihw, int out_c, int in_c, int kernel, PackedConv* out);
int64_t lowp_conv_scratch_bytes(const Conv2dParams& p, Precision precision);  // 0: allocates its own
void conv2d_int8(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 void* scratch, ThreadPool& pool);
void conv2d_bf16(const Conv2dParams& p, const float* x, const PackedConv& w, const ConvEpilogue& e, float* y,
                 void* scratch, ThreadPool& pool);

}  // namespace fusediff::kernels::reference
