/**
 * UNet2DModel forward against the diffusers golden tensors (test/fixtures/diffusers/models):
 * every input set of every model, within that set's stated absolute tolerance (on the device
 * of helpers/device.ts: the CPU, or CUDA under npm run test:cuda).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadUNet, Tensor, type UNet } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { deviceOptions, deviceTolerance } from './helpers/device.js';
import { float32, numbers, readSafetensors } from './helpers/safetensors.js';

const MODELS = path.join(__dirname, 'fixtures/diffusers/models');

interface InputSet {
  prefix: string;
  batch: number;
  tolerance: number;
}

for (const name of ['unet_basic', 'unet_cm_mirror', 'unet_fourier_1ch', 'unet_learned_var_cond']) {
  describe(name, () => {
    const dir = path.join(MODELS, name);
    const cases = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { input_sets: InputSet[] };
    const io = readSafetensors(path.join(dir, 'io.safetensors'));
    let unet: UNet;
    beforeAll(async () => {
      unet = await loadUNet(dir, deviceOptions());
    });
    afterAll(() => unet.dispose());

    for (const set of cases.input_sets) {
      it(`${set.prefix} matches diffusers within ${set.tolerance.toExponential(2)}`, async () => {
        const sample = io.get(`${set.prefix}sample`)!;
        const t = numbers(io.get(`${set.prefix}timestep`)!);
        const labels = io.get(`${set.prefix}class_labels`);
        const x = Tensor.fromFloat32(float32(sample), sample.shape);
        const y = await unet.forward(x, t.length === 1 ? t[0] : t, labels ? { classLabels: numbers(labels) } : {});
        const expected = io.get(`${set.prefix}out_f64`)!;
        expect(y.shape).toEqual(expected.shape);
        const want = numbers(expected);
        const err = maxAbsDiff(await y.toFloat32Array(), want);
        expect(err).toBeLessThanOrEqual(deviceTolerance(set.tolerance, Math.max(...want.map(Math.abs))));
        x.dispose();
        y.dispose();
      });
    }
  });
}
