/**
 * The embedded tile models under models/ (the default one-step student and its teacher):
 * fusediff's forward matches the PyTorch output the training recipe saved beside the weights
 * (training/export.py: reference_io.safetensors), loadPipeline() with no folder loads the
 * default, and the model card's class names, null class and defaults reach generate().
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { embeddedModelDir, FusediffError, loadPipeline, loadUNet, Tensor } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { float32, numbers, readSafetensors } from './helpers/safetensors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-embedded-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(['default', 'teacher'] as const)('embedded model "%s"', (name) => {
  const dir = embeddedModelDir(name);

  it('forward matches the PyTorch reference saved at export', async () => {
    const ref = readSafetensors(path.join(dir, 'reference_io.safetensors'));
    const sample = ref.get('sample')!;
    const outF64 = numbers(ref.get('out_f64')!);
    // float32 vs float64 on the same weights: PyTorch's own float32 error sets the scale.
    const torchErr = maxAbsDiff(float32(ref.get('out_torch_f32')!), outF64);
    const tolerance = Math.max(10 * torchErr, 1e-5);
    const unet = await loadUNet(dir);
    try {
      const x = Tensor.fromFloat32(float32(sample), sample.shape);
      const y = await unet.forward(x, numbers(ref.get('timestep')!), { classLabels: numbers(ref.get('class_labels')!) });
      expect(y.shape).toEqual(sample.shape);
      const err = maxAbsDiff(await y.toFloat32Array(), outF64);
      expect(err).toBeLessThanOrEqual(tolerance);
      x.dispose();
      y.dispose();
    } finally {
      unet.dispose();
    }
  });

  it('carries a model card with the five tile classes', async () => {
    const index = JSON.parse(readFileSync(path.join(dir, 'model_index.json'), 'utf8')) as { _fusediff: { class_names: string[]; null_class_label: number } };
    expect(index._fusediff.class_names).toEqual(['floor', 'wall', 'feature', 'item', 'monster']);
    const config = JSON.parse(readFileSync(path.join(dir, 'unet/config.json'), 'utf8')) as { num_class_embeds: number };
    expect(index._fusediff.null_class_label).toBe(config.num_class_embeds - 1);
  });
});

describe('loadPipeline() with no folder', () => {
  it('loads the one-step student and generates RGBA tiles by class name', async () => {
    const pipe = await loadPipeline();
    try {
      expect(pipe.dir).toBe(embeddedModelDir());
      expect(pipe.defaultSampler).toBe('consistency');
      expect(pipe.card.classNames).toEqual(['floor', 'wall', 'feature', 'item', 'monster']);
      const byName = await pipe.generate({ classLabels: ['wall', 'item'], seed: 5 });
      expect(byName.steps).toBe(1);
      expect(byName.images).toHaveLength(2);
      for (const img of byName.images) expect([img.width, img.height, img.channels]).toEqual([32, 32, 4]);
      // Names are the same as ids.
      const byId = await pipe.generate({ classLabels: [1, 3], seed: 5 });
      expect(byId.images.map((i) => Buffer.from(i.data).toString('hex'))).toEqual(byName.images.map((i) => Buffer.from(i.data).toString('hex')));
      // Different classes give different tiles from the same noise.
      const wall = await pipe.generate({ classLabels: 'wall', seed: 9 });
      const floor = await pipe.generate({ classLabels: 'floor', seed: 9 });
      expect(Buffer.from(wall.images[0].data).equals(Buffer.from(floor.images[0].data))).toBe(false);
      await expect(pipe.generate({ classLabels: 'dragon' })).rejects.toMatchObject({ code: 'E_ARGUMENT', message: expect.stringMatching(/floor, wall, feature, item, monster/) });
    } finally {
      pipe.dispose();
    }
  });

  it("applies the card's default guidance and reports the scale used", async () => {
    const pipe = await loadPipeline(embeddedModelDir('teacher'));
    try {
      const guided = await pipe.generate({ classLabels: 'floor', seed: 3, steps: 2 });
      expect(guided.guidanceScale).toBe(pipe.card.defaultGuidanceScale);
      expect(guided.guidanceScale).toBeGreaterThan(1);
      const plain = await pipe.generate({ classLabels: 'floor', seed: 3, steps: 2, guidanceScale: 1 });
      expect(plain.guidanceScale).toBe(1);
      expect(Buffer.from(plain.images[0].data).equals(Buffer.from(guided.images[0].data))).toBe(false);
      const explicit = await pipe.generate({ classLabels: 'floor', seed: 3, steps: 2, guidanceScale: pipe.card.defaultGuidanceScale });
      expect(Buffer.from(explicit.images[0].data).equals(Buffer.from(guided.images[0].data))).toBe(true);
      // Without classes there is nothing to guide.
      expect((await pipe.generate({ seed: 3, steps: 1 })).guidanceScale).toBeUndefined();
    } finally {
      pipe.dispose();
    }
  });
});

describe('model cards', () => {
  const withCard = (card: unknown): string => {
    const dir = mkdtempSync(path.join(tmp, 'card-'));
    cpSync(embeddedModelDir('teacher'), dir, { recursive: true });
    const indexFile = path.join(dir, 'model_index.json');
    const index = JSON.parse(readFileSync(indexFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(indexFile, JSON.stringify({ ...index, _fusediff: card }));
    return dir;
  };

  it.each([
    [[1, 2], /_fusediff\. must be an object/],
    [{ class_names: ['a', 'a'] }, /class_names must be a list without repeated names/],
    [{ class_names: [] }, /class_names must be a non-empty list/],
    [{ null_class_label: -1 }, /null_class_label must be a non-negative integer/],
    [{ default_guidance_scale: 'high' }, /default_guidance_scale must be a finite number/],
    [{ default_steps: 0 }, /default_steps must be a positive integer/],
    [{ default_sampler: 'consistency' }, /default_sampler "consistency" is not a sampler this model can run/],
  ])('refuses %j with E_CONFIG', async (card, message) => {
    const err = await loadPipeline(withCard(card)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FusediffError);
    expect(err).toMatchObject({ code: 'E_CONFIG', message: expect.stringMatching(message) });
  });

  it('without a card, class names are refused with a clear message', async () => {
    const pipe = await loadPipeline(withCard(undefined));
    try {
      expect(pipe.card).toEqual({});
      await expect(pipe.generate({ classLabels: 'wall', steps: 1 })).rejects.toMatchObject({ code: 'E_ARGUMENT', message: expect.stringMatching(/names no classes/) });
    } finally {
      pipe.dispose();
    }
  });
});
