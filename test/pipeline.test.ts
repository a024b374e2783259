/**
 * loadPipeline / generate on pipeline folders built around the fixture models (a
 * model_index.json, the UNet folder and a scheduler config in a temp folder): every sampler,
 * seeds and per-image reproducibility, guidance, img2img, truncation, progress, abort, errors.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FusediffError,
  Generator,
  Tensor,
  affineStep,
  evaluate,
  loadPipeline,
  loadUNet,
  toImages,
  type Pipeline,
  type SamplerName,
} from '../lib/index.js';
import { FIXTURES } from './helpers/trace.js';

const ROOT = mkdtempSync(path.join(tmpdir(), 'fusediff-pipeline-'));

function writePipeline(name: string, model: string, scheduler: Record<string, unknown> | string): string {
  const dir = path.join(ROOT, name);
  mkdirSync(path.join(dir, 'unet'), { recursive: true });
  mkdirSync(path.join(dir, 'scheduler'), { recursive: true });
  for (const f of ['config.json', 'diffusion_pytorch_model.safetensors'])
    copyFileSync(path.join(FIXTURES, 'models', model, f), path.join(dir, 'unet', f));
  const cls = typeof scheduler === 'string' ? JSON.parse(scheduler)._class_name : scheduler._class_name;
  writeFileSync(
    path.join(dir, 'model_index.json'),
    JSON.stringify({ _class_name: 'DDPMPipeline', _diffusers_version: '0.27.2', scheduler: ['diffusers', cls], unet: ['diffusers', 'UNet2DModel'] }),
  );
  writeFileSync(path.join(dir, 'scheduler', 'scheduler_config.json'), typeof scheduler === 'string' ? scheduler : JSON.stringify(scheduler));
  return dir;
}

const schedulerConfig = (kind: 'schedulers' | 'e2e', name: string) => readFileSync(path.join(FIXTURES, kind, name, 'scheduler_config.json'), 'utf8');

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: string): Promise<FusediffError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(FusediffError);
    expect((e as FusediffError).code).toBe(code);
    return e as FusediffError;
  }
  throw new Error(`expected a ${code} error`);
}

let ddpm: Pipeline; // unet_basic + DDPM (linear β, ε)
let cm: Pipeline; // unet_cm_mirror (class-conditional) + consistency
let ve: Pipeline; // unet_fourier_1ch + score-SDE VE
let learned: Pipeline; // unet_learned_var_cond: 2C outputs, class-conditional, DDPM learned_range

beforeAll(async () => {
  ddpm = await loadPipeline(writePipeline('ddpm', 'unet_basic', schedulerConfig('e2e', 'ddpm20_unet_basic')));
  cm = await loadPipeline(writePipeline('cm', 'unet_cm_mirror', schedulerConfig('e2e', 'cm_onestep_unet_cm_mirror')));
  ve = await loadPipeline(writePipeline('ve', 'unet_fourier_1ch', schedulerConfig('schedulers', 'sde_ve')));
  learned = await loadPipeline(writePipeline('learned', 'unet_learned_var_cond', schedulerConfig('schedulers', 'ddpm_cos_learnedrange_eps')));
});

afterAll(() => {
  for (const p of [ddpm, cm, ve, learned]) p?.dispose();
  rmSync(ROOT, { recursive: true, force: true });
});

const bytes = (r: { images: { data: Uint8ClampedArray }[] }) => r.images.map((i) => Array.from(i.data));

describe('loadPipeline + generate', () => {
  it('DDPM pipeline: typed results, seeds, timings; the default sampler comes from the scheduler class', async () => {
    expect(ddpm.defaultSampler).toBe('ddpm');
    const steps: number[] = [];
    const r = await ddpm.generate({ batchSize: 2, steps: 10, seed: 7, onProgress: (p) => steps.push(p.step) });
    expect(r.sampler).toBe('ddpm');
    expect(r.steps).toBe(10);
    expect(r.seeds).toEqual([7, 8]);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(r.timings.steps.length).toBe(10);
    expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.steps.reduce((a, b) => a + b, 0));
    expect(r.images.length).toBe(2);
    for (const img of r.images) {
      expect(img).toMatchObject({ width: 16, height: 16, channels: 3 });
      expect(img.data).toBeInstanceOf(Uint8ClampedArray);
      expect(img.data.length).toBe(16 * 16 * 3);
    }
    const rgba = await ddpm.generate({ steps: 2, seed: 1, channels: 4 });
    expect(rgba.images[0].channels).toBe(4);
    expect(Array.from(rgba.images[0].data.filter((_, i) => i % 4 === 3)).every((a) => a === 255)).toBe(true);
  });

  it('a seed reproduces its image exactly, alone or inside any batch; other seeds differ', async () => {
    const a = await ddpm.generate({ batchSize: 3, steps: 8, seed: 100 });
    const b = await ddpm.generate({ batchSize: 3, steps: 8, seed: 100 });
    expect(bytes(a)).toEqual(bytes(b));
    const alone = await ddpm.generate({ seeds: [101], steps: 8 });
    expect(bytes(alone)[0]).toEqual(bytes(a)[1]);
    const mixed = await ddpm.generate({ seeds: [5, 102, 101], steps: 8 });
    expect(bytes(mixed)[2]).toEqual(bytes(a)[1]);
    expect(bytes(a)[0]).not.toEqual(bytes(a)[1]);
  });

  const ddpmSamplers: SamplerName[] = ['ddim', 'euler', 'euler-ancestral', 'dpm++2m', 'sde-vp', 'pf-ode', 'pc'];
  for (const sampler of ddpmSamplers) {
    it(`sampler ${sampler} on the DDPM pipeline: deterministic per seed`, async () => {
      const opts = { sampler, steps: 6, seeds: [3, 4], eta: sampler === 'ddim' ? 0.5 : undefined };
      const a = await ddpm.generate(opts);
      const b = await ddpm.generate(opts);
      expect(a.sampler).toBe(sampler);
      expect(a.steps).toBe(6);
      expect(bytes(a)).toEqual(bytes(b));
      const alone = await ddpm.generate({ ...opts, seeds: [4] });
      expect(bytes(alone)[0]).toEqual(bytes(a)[1]);
    });
  }

  it('consistency pipeline: one step and explicit timesteps, class labels', async () => {
    expect(cm.defaultSampler).toBe('consistency');
    const one = await cm.generate({ seeds: [1, 2], classLabels: [3, 8] });
    expect(one.steps).toBe(1);
    const two = await cm.generate({ seeds: [1, 2], classLabels: [3, 8], timesteps: [22, 0] });
    expect(two.steps).toBe(2);
    expect(bytes(one)).not.toEqual(bytes(two));
    const label = await cm.generate({ seeds: [1], classLabels: 3 });
    expect(bytes(label)[0]).toEqual(bytes(one)[0]);
  });

  it('score-SDE VE pipeline: sde-ve (diffusers algorithm), pc and pf-ode on a 1-channel score model (grey to RGB)', async () => {
    expect(ve.defaultSampler).toBe('sde-ve');
    for (const sampler of ['sde-ve', 'pc', 'pf-ode'] as const) {
      const r = await ve.generate({ sampler, steps: 5, seed: 9 });
      expect(r.images[0]).toMatchObject({ width: 8, height: 8, channels: 3 });
      const d = r.images[0].data;
      for (let p = 0; p < 64; p++) expect(d[3 * p]).toBe(d[3 * p + 2]);
    }
  });

  it('learned-variance, class-conditional DDPM with classifier-free guidance', async () => {
    const r = await learned.generate({ classLabels: [0, 1], guidanceScale: 3, steps: 5, seed: 4 });
    expect(r.images.length).toBe(2);
    const plain = await learned.generate({ classLabels: [0, 1], steps: 5, seed: 4 });
    expect(bytes(plain)).not.toEqual(bytes(r));
    // guidanceScale 1 is the plain conditional model.
    expect(bytes(await learned.generate({ classLabels: [0, 1], guidanceScale: 1, steps: 5, seed: 4 }))).toEqual(bytes(plain));
  });

  it('img2img: strength s runs the last ⌊n·s⌋ steps from the given images', async () => {
    const base = await ddpm.generate({ steps: 10, seed: 1, sampler: 'ddim' });
    const r = await ddpm.generate({ steps: 10, seed: 2, sampler: 'ddim', init: { images: base.images, strength: 0.5 } });
    expect(r.steps).toBe(5);
    const full = await ddpm.generate({ steps: 10, seed: 2, sampler: 'ddim', init: { images: base.images, strength: 1 } });
    expect(full.steps).toBe(10);
    const sde = await ddpm.generate({ steps: 10, seed: 2, sampler: 'pf-ode', init: { images: base.images, strength: 0.3 } });
    expect(sde.steps).toBe(10);
  });

  it('truncated sampling returns after the chosen step', async () => {
    const r = await ddpm.generate({ steps: 10, seed: 1, stopAfter: 4 });
    expect(r.steps).toBe(4);
    const s = await ddpm.generate({ steps: 10, seed: 1, sampler: 'sde-vp', stopAfter: 3 });
    expect(s.steps).toBe(3);
  });

  it('an AbortSignal stops sampling with E_ABORTED', async () => {
    const controller = new AbortController();
    await rejectsWith(
      ddpm.generate({ steps: 50, seed: 1, signal: controller.signal, onProgress: (p) => p.step === 2 && controller.abort() }),
      'E_ABORTED',
    );
    const pre = new AbortController();
    pre.abort();
    await rejectsWith(ddpm.generate({ steps: 5, signal: pre.signal }), 'E_ABORTED');
  });

  it('bad options and folders are FusediffErrors with stable codes', async () => {
    await rejectsWith(ddpm.generate({ sampler: 'heun' as SamplerName }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ sampler: 'consistency', steps: 1 }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ sampler: 'sde-ve', steps: 1 }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ classLabels: [1], steps: 1 }), 'E_ARGUMENT');
    await rejectsWith(cm.generate({ guidanceScale: 2 }), 'E_ARGUMENT');
    await rejectsWith(cm.generate({ classLabels: [10] }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ seeds: [1, 2], batchSize: 3, steps: 1 }), 'E_SHAPE');
    await rejectsWith(ddpm.generate({ seed: -1, steps: 1 }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ seed: 1.5, steps: 1 }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ steps: 0 }), 'E_ARGUMENT');
    await rejectsWith(ddpm.generate({ steps: 4, init: { images: [], strength: 0.5 } }), 'E_ARGUMENT');
    await rejectsWith(loadPipeline(path.join(ROOT, 'nowhere')), 'E_IO');
    const bad = writePipeline('bad-class', 'unet_basic', { _class_name: 'LMSDiscreteScheduler' });
    await rejectsWith(loadPipeline(bad), 'E_UNSUPPORTED');
    const badValue = writePipeline('bad-value', 'unet_basic', { _class_name: 'DDPMScheduler', beta_schedule: 'quadratic' });
    await rejectsWith(loadPipeline(badValue), 'E_CONFIG');
  });
});

describe('classifier-free guidance', () => {
  it('one batched forward [unconditional; conditional], combined as ε_u + w·(ε_c − ε_u) inside the step kernel', async () => {
    const unet = await loadUNet(path.join(FIXTURES, 'models', 'unet_cm_mirror'));
    const x = await new Generator(3).randn([2, 3, 16, 16]);
    const seen: { batch: number; labels?: number[] }[] = [];
    const model = async (input: Tensor, t: number[], labels?: number[]) => {
      seen.push({ batch: input.shape[0], labels });
      return unet.forward(input, t, { classLabels: labels });
    };
    const w = 4.5;
    const ev = await evaluate(model, x, [500, 500], { classLabels: [3, 8], guidanceScale: w, unconditionalClass: 9 });
    expect(seen).toEqual([{ batch: 4, labels: [9, 9, 3, 8] }]);
    expect(ev.output.shape).toEqual([4, 3, 16, 16]);
    // The kernel's guided model output (out = 1·m̃) against the formula evaluated in JS.
    const guided = await (await affineStep({ shape: [2, 3, 16, 16], m: ev.output, bm: 1, guidanceScale: ev.guidanceScale })).out.toFloat32Array();
    const both = await ev.output.toFloat32Array();
    const n = 2 * 3 * 16 * 16;
    let err = 0;
    for (let i = 0; i < n; i++) err = Math.max(err, Math.abs(guided[i] - (both[i] + w * (both[n + i] - both[i]))));
    expect(err).toBeLessThan(1e-5);
    // The same as separate forwards of each half.
    const cond = await (await unet.forward(x, 500, { classLabels: [3, 8] })).toFloat32Array();
    const uncond = await (await unet.forward(x, 500, { classLabels: [9, 9] })).toFloat32Array();
    let err2 = 0;
    for (let i = 0; i < n; i++) err2 = Math.max(err2, Math.abs(guided[i] - (uncond[i] + w * (cond[i] - uncond[i]))));
    expect(err2).toBeLessThan(1e-4);
    unet.dispose();
  });
});

describe('images', () => {
  it("diffusers' conversion: round(clamp(x/2 + 0.5, 0, 1)·255), half to even; grey replicated; alpha", async () => {
    const x = Tensor.fromFloat32([-1, 0, 1, 2, -3, 1 / 255, 0.5, 0.25], [1, 1, 2, 4]);
    const [img] = await toImages(x);
    // x/2 + 0.5 = 0, 0.5, 1, 1.5, −1, 0.50196, 0.75, 0.625 → ×255 = 0, 127.5 → 128, 255, 255, 0, 128, 191.25, 159.375
    expect(Array.from(img.data.filter((_, i) => i % 3 === 0))).toEqual([0, 128, 255, 255, 0, 128, 191, 159]);
    const rgb = Tensor.fromFloat32([1, -1, 0.2, 0, 0, 0], [1, 3, 1, 2]);
    const [rgba] = await toImages(rgb, { channels: 4 });
    expect(Array.from(rgba.data)).toEqual([255, 153, 128, 255, 0, 128, 128, 255]);
  });
});
