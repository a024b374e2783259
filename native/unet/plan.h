// A UNet2DModel as an executable plan: the time-embedding MLP, then an ordered list of fused
// ops over SSA activation values, with every weight packed for the chosen kernel table.
// The plan knows nothing about how or where its ops run (executor.h does that).
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "kernels/kernels.h"
#include "unet/config.h"
#include "unet/weights.h"

namespace fusediff::unet {

// An activation: NHWC with height = H >> scale, width = W >> scale for an input of H x W.
struct Value {
  int scale = 0;
  int channels = 0;
};

// A dense layer y = x W^T + b, run as a 1x1 convolution over rows. `sources` are the
// diffusers weight prefixes (".weight"/".bias") whose outputs it concatenates, in order.
struct Linear {
  std::vector<std::string> sources;
  kernels::PackedConv weight;
  std::vector<float> bias;
  int in = 0, out = 0;
};

// Convolution with the epilogue of kernels::ConvEpilogue. temb_offset >= 0 adds the
// per-image time projection starting at that column of the projection table. `sources` as
// for Linear (one prefix; three for an attention's fused Q/K/V projection).
struct ConvOp {
  std::vector<std::string> sources;
  int in = -1, out = -1;
  kernels::PackedConv weight;
  std::vector<float> bias;
  int kernel = 3, stride = 1, pad = 1;
  int temb_offset = -1;
  int residual = -1;
  float output_scale = 1.0f;
};

// GroupNorm (+ optional ResNet scale-shift from the projection table) (+ optional SiLU).
struct NormOp {
  std::string source;
  int in = -1, out = -1;
  std::vector<float> gamma, beta;
  int groups = 1;
  float eps = 1e-5f;
  bool silu = false;
  int scale_shift_offset = -1;
};

// Multi-head attention over the pixels of a value holding concatenated Q, K, V features.
struct AttentionOp {
  int in = -1, out = -1;
  int heads = 1;
};

struct ResampleOp {
  enum Kind { UpsampleNearest2x, AvgPool2x2 } kind;
  int in = -1, out = -1;
};

struct ConcatOp {
  int a = -1, b = -1, out = -1;
};

using Op = std::variant<ConvOp, NormOp, AttentionOp, ResampleOp, ConcatOp>;

struct Plan {
  UNetConfig config;
  const kernels::KernelTable* kernels = nullptr;

  // Time embedding: projection of the timestep (sinusoidal or Fourier) to proj_dim features,
  // then the MLP to time_dim.
  int proj_dim = 0;
  int time_dim = 0;
  std::vector<float> fourier_weight;  // Fourier projection only
  Linear time_linear_1, time_linear_2;
  // Class conditioning added to the time embedding.
  std::vector<float> class_table;           // ClassEmbed::Embedding: [num_class_embeds][time_dim]
  Linear class_linear_1, class_linear_2;    // ClassEmbed::Timestep
  // Every ResNet's time_emb_proj, concatenated into one layer: silu(temb) -> [temb_proj.out]
  // columns, each ResNet reading its own slice (ConvOp::temb_offset, NormOp::scale_shift_offset).
  Linear temb_proj;

  std::vector<Value> values;
  int input = -1;   // value holding the (centred) input sample
  int output = -1;  // value holding conv_out's result
  std::vector<Op> ops;
  int num_downsamples = 0;  // input sides must be divisible by 2^num_downsamples
  int64_t parameter_count = 0;
};

// The arithmetic of the convolutions and linear layers (kernels::Precision). A "layer" is a
// diffusers module holding a conv or linear weight, named by its prefix ("conv_in",
// "down_blocks.0.resnets.1.conv2", "mid_block.attentions.0.to_q", "time_embedding.linear_1").
// Layers the plan fuses run in one precision: an attention's to_q/to_k/to_v, and every
// ResNet's time_emb_proj (one GEMM): one float member keeps its whole group float.
struct PrecisionOptions {
  kernels::Precision mode = kernels::Precision::F32;
  std::vector<std::string> float_layers;  // these stay float32 whatever the mode
  // With mode I8: quantize layers stored as float (load-time quantization). When false (a
  // pre-quantized folder), only layers stored as int8 run int8; the others stay float.
  bool quantize_float_weights = true;
};

// Builds the plan of `config`, reading weights from `weights`. With dry_run, nothing is
// packed (used to list the expected weights of a config).
Plan build_plan(const UNetConfig& config, WeightSource& weights, const kernels::KernelTable& kernels,
                bool dry_run = false, const PrecisionOptions& precision = {});

// The conv and linear layers of a config in plan order, each with the group it runs in
// (the fused op's sources), for quantization tools.
struct LayerInfo {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch shape of its weight
  std::vector<std::string> group;
};
std::vector<LayerInfo> plan_layers(const UNetConfig& config);

}  // namespace fusediff::unet
