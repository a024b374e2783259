/**
 * Schedules and scheduler configs: diffusers' defaults, the β tables against diffusers' own,
 * spacing edge cases, Karras, zero-SNR, the forward process, and the errors of bad
 * configs and arguments.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CMStochasticIterativeScheduler,
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  FusediffError,
  Generator,
  ScoreSdeVeScheduler,
  ScoreSdeVpScheduler,
  Tensor,
  VESDE,
  VPSDE,
  SubVPSDE,
  integerTimesteps,
  karrasSigmas,
  parsePythonJson,
  qSample,
  roundHalfEven,
  schedulerFromConfig,
  velocity,
} from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { numbers, readSafetensors } from './helpers/safetensors.js';
import { FIXTURES } from './helpers/trace.js';

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FusediffError);
    expect((e as FusediffError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('scheduler configs', () => {
  it("every key of diffusers' written configs that the case did not set equals our default", () => {
    for (const kind of ['schedulers', 'e2e']) {
      for (const name of readdirSync(path.join(FIXTURES, kind))) {
        const dir = path.join(FIXTURES, kind, name);
        const written = parsePythonJson(readFileSync(path.join(dir, 'scheduler_config.json'), 'utf8'), name) as Record<string, unknown>;
        const passed = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8')).constructor_kwargs as Record<string, unknown>;
        const defaults = schedulerFromConfig({}, written._class_name as string).config as Record<string, unknown>;
        for (const [key, value] of Object.entries(written)) {
          if (key.startsWith('_') || key in passed) continue;
          expect(defaults[key], `${written._class_name}.${key}`).toEqual(value);
        }
        // And a config read back gives the written values.
        const read = schedulerFromConfig(written).config as Record<string, unknown>;
        for (const [key, value] of Object.entries(written)) if (!key.startsWith('_')) expect(read[key], `${name}: ${key}`).toEqual(value);
      }
    }
  });

  it('β tables agree with diffusers to float32 rounding (1–3 ulp; the cosine schedule exactly)', () => {
    for (const name of ['ddpm_linear_fixedsmall_eps_clip', 'ddpm_scaledlinear_fixedlarge_v_noclip', 'ddpm_cos_learnedrange_eps', 'ddpm_sigmoid_fixedsmall_sample']) {
      const dir = path.join(FIXTURES, 'schedulers', name);
      const s = new DDPMScheduler(readFileSync(path.join(dir, 'scheduler_config.json'), 'utf8'));
      const t = readSafetensors(path.join(dir, 'trace.safetensors'));
      const betas = numbers(t.get('table.betas')!);
      const ac = numbers(t.get('table.alphas_cumprod')!);
      for (let i = 0; i < betas.length; i++) {
        expect(Math.abs(s.betas[i] - betas[i])).toBeLessThanOrEqual(8e-7 * betas[i]);
        expect(Math.abs(s.alphasCumprod[i] - ac[i])).toBeLessThanOrEqual(4e-7 * ac[i]);
      }
    }
  });

  it('bad values are E_CONFIG naming the key; unimplemented ones E_UNSUPPORTED', () => {
    expectCode(() => new DDPMScheduler({ beta_schedule: 'quadratic' as never }), 'E_CONFIG');
    expectCode(() => new DDPMScheduler({ num_train_timesteps: 0 }), 'E_CONFIG');
    expectCode(() => new DDPMScheduler({ clip_sample: 'yes' as never }), 'E_CONFIG');
    expectCode(() => new DDPMScheduler({ variance_type: 'fixed_large_log' as never }), 'E_UNSUPPORTED');
    expectCode(() => new DDIMScheduler({ beta_schedule: 'sigmoid' as never }), 'E_CONFIG');
    expectCode(() => new DPMSolverMultistepScheduler({ algorithm_type: 'sde-dpmsolver++' as never }), 'E_UNSUPPORTED');
    expectCode(() => new DPMSolverMultistepScheduler({ solver_order: 3 }), 'E_CONFIG');
    expectCode(() => new CMStochasticIterativeScheduler({ sigma_min: 100 }), 'E_CONFIG');
    expectCode(() => new DDPMScheduler('{"beta_start": NaN}'), 'E_CONFIG');
    expectCode(() => new DDPMScheduler('{not json'), 'E_FORMAT');
    expectCode(() => schedulerFromConfig({ _class_name: 'PNDMScheduler' }), 'E_UNSUPPORTED');
    expectCode(() => schedulerFromConfig({}), 'E_CONFIG');
    try {
      new DDPMScheduler({ steps_offset: -1 });
    } catch (e) {
      expect((e as Error).message).toContain('steps_offset');
    }
  });

  it('Python JSON literals (DPM-Solver writes lambda_min_clipped: -Infinity) are read', () => {
    const s = new DPMSolverMultistepScheduler('{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity}');
    expect(s.config.lambda_min_clipped).toBe(-Infinity);
    const clipped = new DPMSolverMultistepScheduler({ lambda_min_clipped: -3 });
    clipped.setTimesteps(10);
    expect(clipped.timesteps[0]).toBeLessThan(999); // λ below −3 cuts off the noisiest timesteps
  });
});

describe('timestep spacing', () => {
  it('round half to even', () => {
    expect([0.5, 1.5, 2.5, 812.5, 166.5, -0.5, 2.4, 2.6].map(roundHalfEven)).toEqual([0, 2, 2, 812, 166, 0, 2, 3]);
  });

  it('leading, trailing, linspace as diffusers (incl. the extra trailing element for n = 61)', () => {
    expect(integerTimesteps('leading', 1000, 10, 1)).toEqual([901, 801, 701, 601, 501, 401, 301, 201, 101, 1]);
    expect(integerTimesteps('trailing', 1000, 6, 0)).toEqual([999, 832, 666, 499, 332, 166]);
    expect(integerTimesteps('linspace', 1000, 7, 0)).toEqual([999, 832, 666, 500, 333, 166, 0]);
    const t61 = integerTimesteps('trailing', 1000, 61, 0);
    expect(t61.length).toBe(62);
    expect(t61[61]).toBe(-1);
  });

  it('DDPM custom timesteps and previous-timestep rule', () => {
    const s = new DDPMScheduler();
    s.setTimesteps({ timesteps: [900, 500, 20] });
    expect(s.previousTimestep(500)).toBe(20);
    expect(s.previousTimestep(20)).toBe(-1);
    expectCode(() => s.setTimesteps({ timesteps: [5, 10] }), 'E_ARGUMENT');
    s.setTimesteps(6);
    expect(s.previousTimestep(999)).toBe(833); // t − ⌊T/n⌋ whatever the spacing
    expectCode(() => s.setTimesteps(0), 'E_ARGUMENT');
    expectCode(() => s.setTimesteps(1001), 'E_ARGUMENT');
  });
});

describe('Karras sigmas, zero SNR, SDE marginals', () => {
  it('Karras: σ_max first, σ_min last, ρ-spaced', () => {
    const s = karrasSigmas(5, 0.002, 80, 7);
    expect(s[0]).toBeCloseTo(80, 10);
    expect(s[4]).toBeCloseTo(0.002, 12);
    const mid = (80 ** (1 / 7) + 0.5 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7;
    expect(s[2]).toBeCloseTo(mid, 10);
  });

  it('rescale_betas_zero_snr makes ᾱ_{T−1} = 0 and keeps ᾱ_0', () => {
    const plain = new DDIMScheduler({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012 });
    const z = new DDIMScheduler({ beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, rescale_betas_zero_snr: true });
    expect(z.alphasCumprod[999]).toBe(0);
    expect(Math.abs(z.alphasCumprod[0] - plain.alphasCumprod[0])).toBeLessThan(1e-7);
    const e = new EulerDiscreteScheduler({ rescale_betas_zero_snr: true });
    expect(e.alphasCumprod[999]).toBe(2 ** -24);
  });

  it('SDE marginals: VP variance preserving, sub-VP below VP, VE exploding', () => {
    const vp = new VPSDE();
    const sub = new SubVPSDE();
    const ve = new VESDE({ sigmaMin: 0.01, sigmaMax: 50 });
    for (const t of [0.1, 0.5, 1]) {
      const m = vp.marginal(t);
      expect(m.mean * m.mean + m.std * m.std).toBeCloseTo(1, 12);
      expect(sub.marginal(t).std).toBeLessThan(m.std);
      expect(ve.marginal(t).std).toBeCloseTo(Math.sqrt(ve.sigma(t) ** 2 - 1e-4), 10);
    }
    expect(ve.sigma(1)).toBeCloseTo(50, 10);
    expectCode(() => new VESDE({ sigmaMin: 5, sigmaMax: 1 }), 'E_CONFIG');
  });
});

describe('forward process and step arguments', () => {
  it('q-sample and velocity: √ᾱ·x0 + √(1−ᾱ)·ε and √ᾱ·ε − √(1−ᾱ)·x0, per image', async () => {
    const x0 = Tensor.fromFloat32([1, 2, 3, 4], [2, 1, 1, 2]);
    const eps = Tensor.fromFloat32([0.5, -0.5, 1, -1], [2, 1, 1, 2]);
    const ab = [0.64, 0.36];
    const q = await (await qSample(x0, eps, ab)).toFloat32Array();
    expect(maxAbsDiff(q, [0.8 + 0.3, 1.6 - 0.3, 1.8 + 0.8, 2.4 - 0.8])).toBeLessThan(1e-6);
    const v = await (await velocity(x0, eps, ab)).toFloat32Array();
    expect(maxAbsDiff(v, [0.4 - 0.6, -0.4 - 1.2, 0.6 - 2.4, -0.6 - 3.2])).toBeLessThan(1e-6);
    const s = new DDPMScheduler();
    const viaScheduler = await (await s.addNoise(x0, eps, [10, 500])).toFloat32Array();
    const direct = await (await qSample(x0, eps, [s.alphasCumprod[10], s.alphasCumprod[500]])).toFloat32Array();
    expect(viaScheduler).toEqual(direct);
    expect(maxAbsDiff(await (await s.getVelocity(x0, eps, 10)).toFloat32Array(), await (await velocity(x0, eps, s.alphasCumprod[10])).toFloat32Array())).toBe(0);
  });

  it('step errors: missing learned variance, ᾱ = 0 with ε-prediction, unknown timesteps, bad seeds', async () => {
    const x = Tensor.fromFloat32(new Float32Array(2 * 3 * 4), [2, 3, 2, 2]);
    const lr = new DDPMScheduler({ variance_type: 'learned_range' });
    lr.setTimesteps(10);
    await expect(lr.step(x, 900, x, { generator: new Generator(1) })).rejects.toMatchObject({ code: 'E_SHAPE' });
    const z = new DDIMScheduler({ rescale_betas_zero_snr: true, timestep_spacing: 'trailing' });
    z.setTimesteps(5);
    await expect(z.step(x, 999, x)).rejects.toMatchObject({ code: 'E_ARGUMENT' });
    const e = new EulerDiscreteScheduler();
    e.setTimesteps(10);
    await expect(e.step(x, 123.25, x)).rejects.toMatchObject({ code: 'E_ARGUMENT' });
    const wrong = Tensor.fromFloat32(new Float32Array(3 * 3 * 4), [3, 3, 2, 2]);
    const d = new DDIMScheduler();
    d.setTimesteps(10);
    await expect(d.step(wrong, 900, x)).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(d.step(x, 900, x, { eta: 1, noise: wrong })).rejects.toMatchObject({ code: 'E_SHAPE' });
    expectCode(() => new Generator(-1), 'E_ARGUMENT');
    expectCode(() => new Generator(2 ** 53), 'E_ARGUMENT');
    expectCode(() => new Generator([1, 2]).seedsFor(3), 'E_SHAPE');
    const ve = new ScoreSdeVeScheduler();
    expect(ve.timesteps.length).toBe(2000);
    const vp = new ScoreSdeVpScheduler();
    vp.setTimesteps(4);
    expect(vp.timesteps[0]).toBe(1);
    const ea = new EulerAncestralDiscreteScheduler();
    expectCode(() => ea.setTimesteps(0), 'E_ARGUMENT');
  });

  it('Philox noise: reproducible per seed and stream, independent of the batch', async () => {
    const a = await (await new Generator([5, 6]).randn([2, 3, 8, 8])).toFloat32Array();
    const b = await (await new Generator(6).randn([1, 3, 8, 8])).toFloat32Array();
    expect(Array.from(a.subarray(192))).toEqual(Array.from(b));
    const g = new Generator(5);
    const first = await (await g.randn([1, 3, 8, 8])).toFloat32Array();
    const second = await (await g.randn([1, 3, 8, 8])).toFloat32Array();
    expect(Array.from(first)).toEqual(Array.from(a.subarray(0, 192)));
    expect(Array.from(second)).not.toEqual(Array.from(first));
  });
});

describe('paths the fixtures do not cover, against the formulas evaluated in JS', () => {
  const x = [0.3, -1.2, 2.5, 0.1, -0.4, 1.9, -2.2, 0.8, 0.05, -0.6, 1.1, 3.0];
  const m = [1.5, -0.2, -2.0, 0.7, 0.9, -1.4, 0.3, -0.8, 2.2, -1.9, 0.4, 0.6];
  const shape = [2, 1, 2, 3];
  const quantile = (v: number[], q: number) => {
    const a = v.map(Math.abs).sort((p, r) => p - r);
    const pos = q * (a.length - 1);
    const lo = Math.floor(pos);
    return a[lo] + (pos - lo) * (a[Math.min(lo + 1, a.length - 1)] - a[lo]);
  };

  it('DDPM dynamic thresholding (Imagen): s = clamp(quantile(|x̂0|, ratio), 1, max), x̂0 ← clamp(x̂0, −s, s)/s', async () => {
    const s = new DDPMScheduler({ thresholding: true, dynamic_thresholding_ratio: 0.8, sample_max_value: 1.5 });
    s.setTimesteps(10);
    const t = 500;
    const ab = s.alphasCumprod[t];
    const abp = s.alphasCumprod[t - 100];
    const x0 = x.map((v, i) => (v - Math.sqrt(1 - ab) * m[i]) / Math.sqrt(ab));
    const expected: number[] = [];
    const expectedX0: number[] = [];
    for (let b = 0; b < 2; b++) {
      const item = x0.slice(6 * b, 6 * b + 6).map(Math.fround);
      const th = Math.min(Math.max(quantile(item, 0.8), 1), 1.5);
      item.forEach((v, j) => {
        const c = Math.min(Math.max(v, -th), th) / th;
        expectedX0.push(c);
        const beta = 1 - ab / abp;
        expected.push(((Math.sqrt(abp) * beta) / (1 - ab)) * c + ((Math.sqrt(ab / abp) * (1 - abp)) / (1 - ab)) * x[6 * b + j]);
      });
    }
    const zero = Tensor.fromFloat32(new Float32Array(12), shape);
    const out = await s.step(Tensor.fromFloat32(m, shape), t, Tensor.fromFloat32(x, shape), { noise: zero });
    expect(maxAbsDiff(await out.predOriginalSample!.toFloat32Array(), expectedX0)).toBeLessThan(1e-6);
    expect(maxAbsDiff(await out.prevSample.toFloat32Array(), expected)).toBeLessThan(1e-6);
  });

  it('DDIM use_clipped_model_output: ε recomputed from the clipped x̂0', async () => {
    const s = new DDIMScheduler({ clip_sample: true });
    s.setTimesteps(10);
    const t = 900;
    const ab = s.alphasCumprod[t];
    const abp = s.alphasCumprod[t - 100];
    const expected = x.map((v, i) => {
      const x0 = Math.min(Math.max((v - Math.sqrt(1 - ab) * m[i]) / Math.sqrt(ab), -1), 1);
      const eps = (v - Math.sqrt(ab) * x0) / Math.sqrt(1 - ab);
      return Math.sqrt(abp) * x0 + Math.sqrt(1 - abp) * eps;
    });
    const out = await s.step(Tensor.fromFloat32(m, shape), t, Tensor.fromFloat32(x, shape), { useClippedModelOutput: true });
    expect(maxAbsDiff(await out.prevSample.toFloat32Array(), expected)).toBeLessThan(1e-6);
  });

  it('Euler with churn (s_churn > 0): x̂ = x + s_noise·√(σ̂² − σ²)·z, then the Euler step from σ̂', async () => {
    const s = new EulerDiscreteScheduler();
    s.setTimesteps(10);
    const i = 3;
    const t = s.timesteps[i];
    const z = [0.5, -1, 0.2, 0.3, -0.7, 1.1, 0, 0.9, -0.4, 0.6, -1.3, 0.25];
    const sigma = s.sigmas[i];
    const gamma = Math.min(5 / 10, Math.SQRT2 - 1);
    const sh = sigma * (gamma + 1);
    const expected = x.map((v, k) => {
      const xh = v + Math.sqrt(sh * sh - sigma * sigma) * z[k];
      const x0 = xh - sh * m[k];
      return xh + ((xh - x0) / sh) * (s.sigmas[i + 1] - sh);
    });
    s.setBeginIndex(i);
    const out = await s.step(Tensor.fromFloat32(m, shape), t, Tensor.fromFloat32(x, shape), { sChurn: 5, noise: Tensor.fromFloat32(z, shape) });
    expect(maxAbsDiff(await out.prevSample.toFloat32Array(), expected)).toBeLessThan(2e-5);
  });
});
