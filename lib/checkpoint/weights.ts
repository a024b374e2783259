/**
 * Which files hold a UNet's weights, as diffusers names them:
 *   diffusion_pytorch_model[.<variant>].safetensors
 *   diffusion_pytorch_model.safetensors.index[.<variant>].json   (sharded: a weight_map of shards)
 *   diffusion_pytorch_model[.<variant>].bin                     (PyTorch, read by the restricted reader)
 *   diffusion_pytorch_model.bin.index[.<variant>].json
 * searched in that order, safetensors first as diffusers does. A variant (`fp16`) names the
 * files of another precision of the same weights.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { readJsonFile } from '../json.js';
import type { ModelLayout } from './layout.js';
import { assertInside, isFile, joinInside } from './paths.js';

export type WeightFormat = 'safetensors' | 'bin';

export interface FindWeightsOptions {
  variant?: string;
  /** Only this format (default: either, safetensors first). */
  format?: WeightFormat;
}

const BASE = 'diffusion_pytorch_model';
const MAX_INDEX_BYTES = 16 << 20; // a weight_map of tens of thousands of tensors

/** diffusion_pytorch_model[.variant].<format>: the single-file weights name. */
export function weightsFileName(format: WeightFormat, variant?: string): string {
  return `${BASE}${variant ? `.${variant}` : ''}.${format}`;
}

/** E_ARGUMENT unless `variant` can be part of a file name (letters, digits, _ and -). */
export function checkVariant(variant: unknown): string | undefined {
  if (variant === undefined) return undefined;
  if (typeof variant !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(variant))
    throw new FusediffError('E_ARGUMENT', `variant must be a name such as "fp16", got ${JSON.stringify(variant)}`);
  return variant;
}

/** The shards a sharded checkpoint's index.json lists, each checked to be a plain file name of `format` inside the folder. */
async function shards(root: string, index: string, format: WeightFormat): Promise<string[]> {
  const json = await readJsonFile(index, MAX_INDEX_BYTES);
  const map = typeof json === 'object' && json !== null ? (json as { weight_map?: unknown }).weight_map : undefined;
  if (typeof map !== 'object' || map === null || Array.isArray(map))
    throw new FusediffError('E_CONFIG', `${index}: "weight_map" must be an object of tensor name -> shard file`);
  const names = new Set(Object.values(map as Record<string, unknown>));
  if (names.size === 0) throw new FusediffError('E_CONFIG', `${index}: "weight_map" lists no shards`);
  const files: string[] = [];
  for (const name of names) {
    const file = joinInside(path.dirname(index), name, index);
    if (!file.endsWith(`.${format}`))
      throw new FusediffError('E_CONFIG', `${index}: shard ${JSON.stringify(name)} is not a .${format} file like the index`);
    await assertInside(root, file);
    files.push(file);
  }
  return files;
}

/** What single-file weights `folder` has: '' for those without a variant, else variant names. */
async function variantsIn(folder: string): Promise<string[]> {
  const names = await fs.readdir(folder).catch(() => [] as string[]);
  const found = new Set<string>();
  for (const name of names) {
    const m = /^diffusion_pytorch_model(?:\.([A-Za-z0-9_-]+))?\.(safetensors|bin)$/.exec(name);
    if (m) found.add(m[1] ?? '');
  }
  return [...found].sort();
}

/**
 * The files holding the weights of the UNet in `layout`: one, or a sharded checkpoint's
 * shards. E_IO naming what was looked for when there are none.
 */
export async function findWeightFiles(layout: ModelLayout, options: FindWeightsOptions = {}): Promise<string[]> {
  const variant = checkVariant(options.variant);
  const v = variant ? `.${variant}` : '';
  const formats: WeightFormat[] = options.format ? [options.format] : ['safetensors', 'bin'];
  const tried: string[] = [];
  for (const format of formats) {
    const single = path.join(layout.unet, weightsFileName(format, variant));
    tried.push(path.basename(single));
    if (await isFile(single)) {
      await assertInside(layout.root, single);
      return [single];
    }
    const index = path.join(layout.unet, `${BASE}.${format}.index${v}.json`);
    tried.push(path.basename(index));
    if (await isFile(index)) {
      await assertInside(layout.root, index);
      return shards(layout.root, index, format);
    }
  }
  const others = (await variantsIn(layout.unet)).filter((name) => name !== (variant ?? ''));
  const hint = others.length
    ? ` (it has ${others.map((name) => (name ? `the ${name} variant` : 'weights without a variant')).join(' and ')})`
    : '';
  throw new FusediffError('E_IO', `no weights in ${layout.unet}: looked for ${tried.join(', ')}${hint}`);
}
