/**
 * Writes a diffusers model folder (config.json + diffusion_pytorch_model.safetensors) with
 * seeded random weights for any UNet2DModel config. Weights are uniform with a fan-in
 * scale (so activations stay O(1) through deep nets); norm scales near 1, biases small.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expectedWeights, parseUNet2DConfig } from '../../lib/index.js';
import { writeSafetensors } from './safetensors.js';

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function writeRandomModel(dir: string, rawConfig: Record<string, unknown>, seed: number): void {
  const config = parseUNet2DConfig(rawConfig, 'test config');
  const random = rng(seed);
  const tensors = expectedWeights(config).map(({ name, shape }) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isNorm = /norm|group_norm/.test(name) && name.endsWith('.weight');
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 1;
    const scale = name.endsWith('.bias') ? 0.05 : shape.length > 1 ? Math.sqrt(3 / fanIn) : 1;
    for (let i = 0; i < n; i++) {
      const u = 2 * random() - 1;
      data[i] = isNorm ? 1 + 0.1 * u : name === 'time_proj.weight' ? 4 * u : scale * u;
    }
    return { name, shape, data };
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify(rawConfig, null, 2));
  writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
}
