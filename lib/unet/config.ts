/**
 * UNet2DModel configuration: the keys, types and defaults of diffusers' `UNet2DModel`
 * (diffusers 0.27, plus `time_embedding_dim` from later versions). A config.json written by
 * diffusers is read as is; absent keys take diffusers' defaults; every value is checked,
 * and values fusediff does not implement are refused with E_UNSUPPORTED naming the key.
 */
import { FusediffError } from '../errors.js';

export type DownBlockType = 'DownBlock2D' | 'AttnDownBlock2D' | 'ResnetDownsampleBlock2D';
export type UpBlockType = 'UpBlock2D' | 'AttnUpBlock2D' | 'ResnetUpsampleBlock2D';

export interface UNet2DConfig {
  sample_size: number | [number, number] | null;
  in_channels: number;
  out_channels: number;
  center_input_sample: boolean;
  time_embedding_type: 'positional' | 'fourier';
  time_embedding_dim: number | null;
  freq_shift: number;
  flip_sin_to_cos: boolean;
  down_block_types: DownBlockType[];
  up_block_types: UpBlockType[];
  block_out_channels: number[];
  layers_per_block: number;
  mid_block_scale_factor: number;
  downsample_padding: number;
  downsample_type: 'conv' | 'resnet';
  upsample_type: 'conv' | 'resnet';
  dropout: number;
  act_fn: 'silu';
  attention_head_dim: number | null;
  norm_num_groups: number;
  attn_norm_num_groups: number | null;
  norm_eps: number;
  resnet_time_scale_shift: 'default' | 'scale_shift';
  add_attention: boolean;
  class_embed_type: 'timestep' | 'identity' | null;
  num_class_embeds: number | null;
  num_train_timesteps: number | null;
}

/** diffusers' UNet2DModel defaults. */
export const UNET2D_DEFAULTS: Readonly<UNet2DConfig> = Object.freeze({
  sample_size: null,
  in_channels: 3,
  out_channels: 3,
  center_input_sample: false,
  time_embedding_type: 'positional',
  time_embedding_dim: null,
  freq_shift: 0,
  flip_sin_to_cos: true,
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'AttnUpBlock2D', 'AttnUpBlock2D', 'UpBlock2D'],
  block_out_channels: [224, 448, 672, 896],
  layers_per_block: 2,
  mid_block_scale_factor: 1,
  downsample_padding: 1,
  downsample_type: 'conv',
  upsample_type: 'conv',
  dropout: 0,
  act_fn: 'silu',
  attention_head_dim: 8,
  norm_num_groups: 32,
  attn_norm_num_groups: null,
  norm_eps: 1e-5,
  resnet_time_scale_shift: 'default',
  add_attention: true,
  class_embed_type: null,
  num_class_embeds: null,
  num_train_timesteps: null,
} as UNet2DConfig);

const DOWN_BLOCKS = ['DownBlock2D', 'AttnDownBlock2D', 'ResnetDownsampleBlock2D'] as const;
const UP_BLOCKS = ['UpBlock2D', 'AttnUpBlock2D', 'ResnetUpsampleBlock2D'] as const;
/** The keys this module reads; others (diffusers bookkeeping such as `_class_name`) are ignored. */
export const SUPPORTED_UNET2D_KEYS = Object.keys(UNET2D_DEFAULTS);

const MAX_CHANNELS = 8192;
const MAX_LEVELS = 8;

class Reader {
  constructor(
    private readonly raw: Record<string, unknown>,
    private readonly where: string,
  ) {}

  private value(key: string): unknown {
    const v = this.raw[key];
    return v === undefined ? (UNET2D_DEFAULTS as unknown as Record<string, unknown>)[key] : v;
  }

  private bad(key: string, want: string, code: 'E_CONFIG' | 'E_UNSUPPORTED' = 'E_CONFIG'): never {
    throw new FusediffError(code, `${this.where}: "${key}" must be ${want}, got ${JSON.stringify(this.raw[key]) ?? 'undefined'}`);
  }

  int(key: string, min: number, max: number): number {
    const v = this.value(key);
    if (typeof v !== 'number' || !Number.isInteger(v)) this.bad(key, 'an integer');
    if (v < min || v > max) this.bad(key, `an integer in [${min}, ${max}]`);
    return v;
  }

  optionalInt(key: string, min: number, max: number): number | null {
    return this.value(key) === null ? null : this.int(key, min, max);
  }

  number(key: string, min: number, max: number): number {
    const v = this.value(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.bad(key, 'a finite number');
    if (v < min || v > max) this.bad(key, `a number in [${min}, ${max}]`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.value(key);
    if (typeof v !== 'boolean') this.bad(key, 'true or false');
    return v;
  }

  choice<T extends string | null>(key: string, allowed: readonly T[], known: readonly string[] = []): T {
    const v = this.value(key);
    if ((allowed as readonly unknown[]).includes(v)) return v as T;
    const list = allowed.map((a) => JSON.stringify(a)).join(', ');
    if (typeof v === 'string' && known.includes(v)) this.bad(key, `one of ${list} (fusediff does not implement "${v}")`, 'E_UNSUPPORTED');
    if (typeof v === 'string') this.bad(key, `one of ${list}`, 'E_UNSUPPORTED');
    return this.bad(key, `one of ${list}`);
  }

  blocks<T extends string>(key: string, allowed: readonly T[]): T[] {
    const v = this.value(key);
    if (!Array.isArray(v) || v.length < 1 || v.length > MAX_LEVELS) this.bad(key, `an array of 1 to ${MAX_LEVELS} block names`);
    return v.map((name, i) => {
      if (typeof name !== 'string') this.bad(key, 'an array of block names');
      if (!(allowed as readonly string[]).includes(name))
        throw new FusediffError(
          'E_UNSUPPORTED',
          `${this.where}: "${key}"[${i}] is "${name}"; supported: ${allowed.join(', ')}`,
        );
      return name as T;
    });
  }

  channels(key: string): number[] {
    const v = this.value(key);
    if (!Array.isArray(v) || v.length < 1 || v.length > MAX_LEVELS) this.bad(key, `an array of 1 to ${MAX_LEVELS} channel counts`);
    for (const c of v)
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 1 || c > MAX_CHANNELS)
        this.bad(key, `an array of integers in [1, ${MAX_CHANNELS}]`);
    return [...(v as number[])];
  }

  sampleSize(): number | [number, number] | null {
    const v = this.value('sample_size');
    if (v === null) return null;
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    if (Array.isArray(v) && v.length === 2 && v.every((d) => Number.isInteger(d) && d > 0)) return [v[0], v[1]];
    return this.bad('sample_size', 'a positive integer, a [height, width] pair or null');
  }
}

/** Reads a diffusers UNet2DModel config object; `where` names its source in messages. */
export function parseUNet2DConfig(raw: unknown, where = 'config.json'): UNet2DConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new FusediffError('E_CONFIG', `${where}: the config must be a JSON object`);
  const obj = raw as Record<string, unknown>;
  const className = obj._class_name;
  if (className !== undefined && className !== 'UNet2DModel')
    throw new FusediffError(
      'E_UNSUPPORTED',
      `${where}: "_class_name" is ${JSON.stringify(className)}; fusediff runs UNet2DModel (pixel-space U-Nets)`,
    );
  const r = new Reader(obj, where);
  const config: UNet2DConfig = {
    sample_size: r.sampleSize(),
    in_channels: r.int('in_channels', 1, 64),
    out_channels: r.int('out_channels', 1, 64),
    center_input_sample: r.bool('center_input_sample'),
    time_embedding_type: r.choice('time_embedding_type', ['positional', 'fourier'] as const, ['learned']),
    time_embedding_dim: r.optionalInt('time_embedding_dim', 1, 4 * MAX_CHANNELS),
    freq_shift: r.number('freq_shift', -1e6, 1e6),
    flip_sin_to_cos: r.bool('flip_sin_to_cos'),
    down_block_types: r.blocks('down_block_types', DOWN_BLOCKS),
    up_block_types: r.blocks('up_block_types', UP_BLOCKS),
    block_out_channels: r.channels('block_out_channels'),
    layers_per_block: r.int('layers_per_block', 1, 16),
    mid_block_scale_factor: r.number('mid_block_scale_factor', 1e-6, 1e6),
    downsample_padding: r.int('downsample_padding', 0, 1),
    downsample_type: r.choice('downsample_type', ['conv', 'resnet'] as const),
    upsample_type: r.choice('upsample_type', ['conv', 'resnet'] as const),
    dropout: r.number('dropout', 0, 1),
    act_fn: obj.act_fn === 'swish' ? 'silu' : r.choice('act_fn', ['silu'] as const, ['mish', 'gelu', 'relu']),
    attention_head_dim: r.optionalInt('attention_head_dim', 1, MAX_CHANNELS),
    norm_num_groups: r.int('norm_num_groups', 1, MAX_CHANNELS),
    attn_norm_num_groups: r.optionalInt('attn_norm_num_groups', 1, MAX_CHANNELS),
    norm_eps: r.number('norm_eps', 0, 1),
    resnet_time_scale_shift: r.choice('resnet_time_scale_shift', ['default', 'scale_shift'] as const, ['ada_group', 'spatial']),
    add_attention: r.bool('add_attention'),
    class_embed_type: r.choice('class_embed_type', [null, 'timestep', 'identity'] as const, ['projection', 'simple_projection']),
    num_class_embeds: r.optionalInt('num_class_embeds', 1, 1_000_000),
    num_train_timesteps: r.optionalInt('num_train_timesteps', 1, 1_000_000),
  };
  checkStructure(config, where);
  return config;
}

function checkStructure(c: UNet2DConfig, where: string): void {
  const levels = c.block_out_channels.length;
  const err = (key: string, msg: string, code: 'E_CONFIG' | 'E_UNSUPPORTED' = 'E_CONFIG'): never => {
    throw new FusediffError(code, `${where}: "${key}" ${msg}`);
  };
  if (c.down_block_types.length !== levels)
    err('down_block_types', `has ${c.down_block_types.length} entries but block_out_channels has ${levels}`);
  if (c.up_block_types.length !== levels)
    err('up_block_types', `has ${c.up_block_types.length} entries but block_out_channels has ${levels}`);
  for (const ch of c.block_out_channels)
    if (ch % c.norm_num_groups !== 0) err('norm_num_groups', `(${c.norm_num_groups}) must divide every block_out_channels entry (${ch})`);
  // As in diffusers, the head size only matters where there is attention: the Attn blocks'
  // widths (up block i works at level levels-1-i) and the mid block's when add_attention.
  if (c.attention_head_dim !== null) {
    const attended = c.block_out_channels.filter(
      (ch, i) => c.down_block_types[i] === 'AttnDownBlock2D' || c.up_block_types[levels - 1 - i] === 'AttnUpBlock2D' || (c.add_attention && i === levels - 1),
    );
    for (const ch of attended)
      if (ch % c.attention_head_dim !== 0) err('attention_head_dim', `(${c.attention_head_dim}) must divide the width of every block with attention (${ch})`);
  }
  if (c.attn_norm_num_groups !== null && c.block_out_channels[levels - 1] % c.attn_norm_num_groups !== 0)
    err('attn_norm_num_groups', `(${c.attn_norm_num_groups}) must divide the last block width`);
  if (c.time_embedding_type === 'positional' && Math.floor(c.block_out_channels[0] / 2) - c.freq_shift === 0)
    err('freq_shift', 'makes the sinusoidal embedding divide by zero (it must differ from block_out_channels[0] / 2)');
}
