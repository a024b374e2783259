/**
 * Exact UNet2DModel configs of public checkpoints, as published on the Hub (the weights are
 * not available here; tests and benchmarks write seeded random weights for them).
 */
import type { UNet2DConfig } from '../../lib/index.js';

/** google/ddpm-cifar10-32 (as re-saved by diffusers 0.24: attention_head_dim null = one head). */
export const DDPM_CIFAR10_32: Partial<UNet2DConfig> & Record<string, unknown> = {
  _class_name: 'UNet2DModel',
  act_fn: 'silu',
  add_attention: true,
  attention_head_dim: null,
  attn_norm_num_groups: null,
  block_out_channels: [128, 256, 256, 256],
  center_input_sample: false,
  class_embed_type: null,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D', 'DownBlock2D'],
  downsample_padding: 0,
  downsample_type: 'conv',
  dropout: 0.0,
  flip_sin_to_cos: false,
  freq_shift: 1,
  in_channels: 3,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-6,
  norm_num_groups: 32,
  num_class_embeds: null,
  num_train_timesteps: null,
  out_channels: 3,
  resnet_time_scale_shift: 'default',
  sample_size: 32,
  time_embedding_type: 'positional',
  up_block_types: ['UpBlock2D', 'UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  upsample_type: 'conv',
};

/** openai/diffusers-cd_imagenet64_l2 (unet/config.json). */
export const CD_IMAGENET64_L2: Partial<UNet2DConfig> & Record<string, unknown> = {
  _class_name: 'UNet2DModel',
  act_fn: 'silu',
  add_attention: true,
  attention_head_dim: 64,
  attn_norm_num_groups: 32,
  block_out_channels: [192, 384, 576, 768],
  center_input_sample: false,
  class_embed_type: null,
  down_block_types: ['ResnetDownsampleBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  downsample_padding: 1,
  downsample_type: 'resnet',
  dropout: 0.0,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 3,
  layers_per_block: 3,
  mid_block_scale_factor: 1,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  num_class_embeds: 1000,
  num_train_timesteps: null,
  out_channels: 3,
  resnet_time_scale_shift: 'scale_shift',
  sample_size: 64,
  time_embedding_type: 'positional',
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'ResnetUpsampleBlock2D'],
  upsample_type: 'resnet',
};

/**
 * google/ddpm-celebahq-256 (config.json at the repository root; weights only as
 * diffusion_pytorch_model.bin). The ddpm-*-256 family (celebahq, cat, church, bedroom)
 * publishes this one config, written by diffusers 0.0.4: absent keys take the defaults.
 */
export const DDPM_CELEBAHQ_256: Partial<UNet2DConfig> & Record<string, unknown> = {
  _class_name: 'UNet2DModel',
  _diffusers_version: '0.0.4',
  act_fn: 'silu',
  attention_head_dim: null,
  block_out_channels: [128, 128, 256, 256, 512, 512],
  center_input_sample: false,
  down_block_types: ['DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'DownBlock2D', 'AttnDownBlock2D', 'DownBlock2D'],
  downsample_padding: 0,
  flip_sin_to_cos: false,
  freq_shift: 1,
  in_channels: 3,
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  norm_eps: 1e-6,
  norm_num_groups: 32,
  out_channels: 3,
  sample_size: 256,
  time_embedding_type: 'positional',
  up_block_types: ['UpBlock2D', 'AttnUpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D', 'UpBlock2D'],
};

/**
 * openai/diffusers-cd_bedroom256_lpips (unet/config.json; weights only as
 * diffusion_pytorch_model.bin, 2.11 GB): the LSUN-256 config of diffusers'
 * scripts/convert_consistency_to_diffusers.py, unconditional.
 */
export const CD_BEDROOM256_LPIPS: Partial<UNet2DConfig> & Record<string, unknown> = {
  _class_name: 'UNet2DModel',
  sample_size: 256,
  in_channels: 3,
  out_channels: 3,
  layers_per_block: 2,
  num_class_embeds: null,
  block_out_channels: [256, 256, 512, 512, 1024, 1024],
  attention_head_dim: 64,
  down_block_types: [
    'ResnetDownsampleBlock2D',
    'ResnetDownsampleBlock2D',
    'ResnetDownsampleBlock2D',
    'AttnDownBlock2D',
    'AttnDownBlock2D',
    'AttnDownBlock2D',
  ],
  up_block_types: [
    'AttnUpBlock2D',
    'AttnUpBlock2D',
    'AttnUpBlock2D',
    'ResnetUpsampleBlock2D',
    'ResnetUpsampleBlock2D',
    'ResnetUpsampleBlock2D',
  ],
  resnet_time_scale_shift: 'default',
  upsample_type: 'resnet',
  downsample_type: 'resnet',
};
