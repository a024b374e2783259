// UNet2DModel configuration as the engine sees it: already validated and completed with
// diffusers' defaults by lib/unet/config.ts. The planner still checks the structural facts
// it relies on (channel divisibility, block counts) and says which key is wrong.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace fusediff::unet {

enum class BlockKind { Down, AttnDown, ResnetDownsample, Up, AttnUp, ResnetUpsample };
enum class TimeEmbedding { Positional, Fourier };
enum class TimeScaleShift { Default, ScaleShift };
enum class ClassEmbed { None, Embedding, Timestep, Identity };
enum class Resample { Conv, Resnet };

struct UNetConfig {
  int in_channels = 3;
  int out_channels = 3;
  bool center_input_sample = false;
  TimeEmbedding time_embedding_type = TimeEmbedding::Positional;
  int time_embedding_dim = 0;  // 0: 4 x block_out_channels[0]
  bool flip_sin_to_cos = true;
  double freq_shift = 0;
  std::vector<BlockKind> down_blocks;
  std::vector<BlockKind> up_blocks;
  std::vector<int> block_out_channels;
  int layers_per_block = 2;
  double mid_block_scale_factor = 1;
  int downsample_padding = 1;
  Resample downsample_type = Resample::Conv;
  Resample upsample_type = Resample::Conv;
  std::optional<int> attention_head_dim;  // none: one head of the block's full width
  int norm_num_groups = 32;
  std::optional<int> attn_norm_num_groups;
  double norm_eps = 1e-5;
  TimeScaleShift resnet_time_scale_shift = TimeScaleShift::Default;
  bool add_attention = true;
  ClassEmbed class_embed_type = ClassEmbed::None;
  int num_class_embeds = 0;  // rows of class_embedding.weight (ClassEmbed::Embedding)
};

}  // namespace fusediff::unet
