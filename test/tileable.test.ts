/**
 * Seamless tiles: with `tileable`, every padded convolution wraps around, so the U-Net is
 * equivariant to circular shifts (by multiples of its total downsampling factor) and
 * generated images continue across their own edges.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadPipeline, loadUNet, Tensor, type GeneratedImage } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { rng } from './helpers/random-model.js';

const BASIC = path.join(__dirname, 'fixtures/diffusers/models/unet_basic');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-tileable-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Rolls an NCHW batch by (dy, dx) pixels, wrapping around. */
function roll(x: Float32Array, [n, c, h, w]: number[], dy: number, dx: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n * c; i++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) out[i * h * w + ((y + dy) % h) * w + ((xx + dx) % w)] = x[i * h * w + y * w + xx];
  return out;
}

it('a tileable forward commutes with circular shifts; a zero-padded one does not', async () => {
  const unet = await loadUNet(BASIC);
  const shape = [2, 3, 16, 16];
  const r = rng(21);
  const x = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => 2 * r() - 1);
  const run = async (data: Float32Array, tileable: boolean) =>
    (await unet.forward(Tensor.fromFloat32(data, shape), [10, 500], { tileable })).toFloat32Array();
  // unet_basic downsamples once: shifts by 2 pixels keep the grid aligned.
  const shifted = await run(roll(x, shape, 6, 4), true);
  expect(maxAbsDiff(shifted, roll(await run(x, true), shape, 6, 4))).toBeLessThan(1e-5);
  const plainShifted = await run(roll(x, shape, 6, 4), false);
  expect(maxAbsDiff(plainShifted, roll(await run(x, false), shape, 6, 4))).toBeGreaterThan(1e-2);
  unet.dispose();
});

/** Mean |difference| across the wrap-around edges over the mean difference of neighbours inside. */
function seamRatio(img: GeneratedImage): number {
  const { width: w, height: h, channels: c, data } = img;
  const px = (y: number, x: number, k: number) => data[(y * w + x) * c + k];
  let seam = 0, seamCount = 0, inner = 0, innerCount = 0;
  for (let k = 0; k < 3; k++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const right = Math.abs(px(y, x, k) - px(y, (x + 1) % w, k));
        const down = Math.abs(px(y, x, k) - px((y + 1) % h, x, k));
        if (x === w - 1) (seam += right), seamCount++;
        else (inner += right), innerCount++;
        if (y === h - 1) (seam += down), seamCount++;
        else (inner += down), innerCount++;
      }
  return seam / seamCount / (inner / innerCount);
}

it('generated tiles have seams no stronger than their interior', async () => {
  const dir = path.join(tmp, 'pipe');
  cpSync(BASIC, path.join(dir, 'unet'), { recursive: true });
  cpSync(path.join(__dirname, 'fixtures/diffusers/e2e/ddim10_unet_basic/scheduler_config.json'), path.join(dir, 'scheduler', 'scheduler_config.json'));
  writeFileSync(path.join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'DDIMPipeline', unet: ['diffusers', 'UNet2DModel'], scheduler: ['diffusers', 'DDIMScheduler'] }));
  const pipe = await loadPipeline(dir);
  const tiled = await pipe.generate({ batchSize: 8, steps: 10, seed: 3, tileable: true });
  const plain = await pipe.generate({ batchSize: 8, steps: 10, seed: 3 });
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const tiledRatio = mean(tiled.images.map(seamRatio));
  const plainRatio = mean(plain.images.map(seamRatio));
  console.log(`seam energy / interior: tileable ${tiledRatio.toFixed(3)}, zero-padded ${plainRatio.toFixed(3)}`);
  expect(tiledRatio).toBeLessThan(1.1);
  expect(tiledRatio).toBeLessThan(plainRatio);
  pipe.dispose();
});
