/**
 * class_embed_type "timestep" and "identity" (no diffusers fixture covers them): checked by
 * equivalences that hold exactly in diffusers' UNet2DModel —
 *  - identity adds the given vector to the time embedding, so a zero vector gives the
 *    unconditional model with the same weights, and a vector v equals the model whose
 *    time_embedding.linear_2.bias is increased by v;
 *  - timestep passes the label through the time projection and its own MLP, so with that
 *    MLP's last layer zeroed it is the unconditional model, and otherwise labels matter.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadUNet, Tensor } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { readSafetensors, writeSafetensors } from './helpers/safetensors.js';
import { rng, writeRandomModel } from './helpers/random-model.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-class-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const base = {
  block_out_channels: [16, 32],
  down_block_types: ['DownBlock2D', 'AttnDownBlock2D'],
  up_block_types: ['AttnUpBlock2D', 'UpBlock2D'],
  layers_per_block: 1,
  norm_num_groups: 8,
  attention_head_dim: 8,
};
const r = rng(3);
const input = Float32Array.from({ length: 2 * 3 * 8 * 8 }, () => 2 * r() - 1);

async function run(dir: string, t: number[], classLabels?: number[] | Float32Array): Promise<Float32Array> {
  const unet = await loadUNet(dir);
  const y = await unet.forward(Tensor.fromFloat32(input, [2, 3, 8, 8]), t, classLabels ? { classLabels } : {});
  const out = await y.toFloat32Array();
  unet.dispose();
  return out;
}

/** Rewrites a model's weights through `edit`. */
function editWeights(dir: string, edit: (name: string, data: Float32Array) => void, drop: (name: string) => boolean = () => false): void {
  const file = path.join(dir, 'diffusion_pytorch_model.safetensors');
  const tensors = [...readSafetensors(file)]
    .filter(([name]) => !drop(name))
    .map(([name, t]) => {
      const data = Float32Array.from(t.data as Float32Array);
      edit(name, data);
      return { name, shape: t.shape, data };
    });
  writeSafetensors(file, tensors);
}

it('identity: the class vector is added to the time embedding', async () => {
  const ident = path.join(tmp, 'identity');
  writeRandomModel(ident, { ...base, class_embed_type: 'identity' }, 11);
  const plain = path.join(tmp, 'plain');
  writeRandomModel(plain, base, 11); // identity has no weights of its own: same tensors
  const t = [10, 700];
  const zero = new Float32Array(2 * 64);
  expect(maxAbsDiff(await run(ident, t, zero), await run(plain, t))).toBe(0);

  // v added per image equals a bias shift in linear_2 — test with the same v for both images.
  const v = Float32Array.from({ length: 64 }, () => 2 * r() - 1);
  const both = new Float32Array(128);
  both.set(v, 0);
  both.set(v, 64);
  const shifted = path.join(tmp, 'shifted');
  writeRandomModel(shifted, base, 11);
  editWeights(shifted, (name, data) => {
    if (name === 'time_embedding.linear_2.bias') for (let i = 0; i < 64; i++) data[i] += v[i];
  });
  expect(maxAbsDiff(await run(ident, t, both), await run(shifted, t))).toBeLessThan(1e-5);
});

it('timestep: labels go through the time projection and their own MLP', async () => {
  const dir = path.join(tmp, 'timestep');
  writeRandomModel(dir, { ...base, class_embed_type: 'timestep' }, 12);
  const t = [5, 400];
  const a = await run(dir, t, [3, 3]);
  const b = await run(dir, t, [900, 900]);
  expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-3);

  editWeights(dir, (name, data) => {
    if (name.startsWith('class_embedding.linear_2')) data.fill(0);
  });
  const plain = path.join(tmp, 'timestep-plain');
  writeRandomModel(plain, { ...base, class_embed_type: 'timestep' }, 12);
  editWeights(plain, () => {}, (name) => name.startsWith('class_embedding.'));
  const zeroed = await run(dir, t, [3, 3]);
  expect(maxAbsDiff(zeroed, await run(dir, t, [900, 900]))).toBe(0);
  // The same tensors without the class MLP, loaded as an unconditional model, agree exactly.
  writeFileSync(path.join(plain, 'config.json'), JSON.stringify(base));
  expect(maxAbsDiff(zeroed, await run(plain, t))).toBe(0);
});
