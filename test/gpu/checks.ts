/**
 * The API-level GPU checks of `npm run test:cuda`, as a plain Node program (bundled by
 * test/gpu/tsup.config.ts into dist-gpu/checks.js with the library and the test helpers, so a
 * GPU machine needs only Node, the built addon + CUDA library and node-gyp-build; no vitest):
 *
 *   1. the diffusers UNet fixtures on CUDA: fp32 at each input set's own tolerance, TF32 and
 *      BF16 at the relative tolerances of test/helpers/device.ts;
 *   2. the diffusers end-to-end samplings on CUDA (forward and steps on the device), every
 *      step's model output and sample against diffusers' float64 reference (fp32, TF32);
 *   3. whole samplings CPU vs CUDA, same pipeline and seed (DDIM 10, DDPM 20, predictor-
 *      corrector 10, consistency 1 and 2 steps): images within a few 8-bit levels;
 *   4. one-step consistency sampling through Pipeline.generate (openai/diffusers-cd_imagenet64_l2
 *      config, seeded random weights, batch 16, TF32): images/s.
 *
 * Run from the repository root: `node dist-gpu/checks.js <results.json>`. Prints one line per
 * check, writes the figures as JSON, exits 1 when a check fails.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  loadPipeline,
  loadUNet,
  parsePythonJson,
  schedulerFromConfig,
  Tensor,
  type GenerateOptions,
  type Scheduler,
} from '../../lib/index.js';
import { MODELS } from '../../bench/cases.js';
import { maxAbsDiff } from '../helpers/compare.js';
import { RELATIVE_TOLERANCE } from '../helpers/device.js';
import { writeRandomModel } from '../helpers/random-model.js';
import { float32, numbers, readSafetensors, type StTensor } from '../helpers/safetensors.js';

type Precision = 'fp32' | 'tf32' | 'bf16';
const ROOT = process.cwd();
const DIFFUSERS = path.join(ROOT, 'test', 'fixtures', 'diffusers');
const PIPELINES = path.join(ROOT, 'test', 'fixtures', 'pipelines');
const results: Record<string, Record<string, Record<string, number | string>>> = {};
const failures: string[] = [];

function record(section: string, name: string, values: Record<string, number | string>, ok: boolean): void {
  (results[section] ??= {})[name] = { ...values, result: ok ? 'pass' : 'FAIL' };
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${section} | ${name} | ${JSON.stringify(values)}`);
  if (!ok) failures.push(`${section}: ${name}`);
}

function tolerance(fixture: number, precision: Precision, referenceMaxAbs: number): number {
  return Math.max(fixture, RELATIVE_TOLERANCE[precision] * Math.max(1, referenceMaxAbs));
}

function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]));
  return m;
}

// 1. UNet fixtures (as test/unet-fixtures.test.ts, on the device).
async function unetFixtures(precision: Precision): Promise<void> {
  for (const name of ['unet_basic', 'unet_cm_mirror', 'unet_fourier_1ch', 'unet_learned_var_cond']) {
    const dir = path.join(DIFFUSERS, 'models', name);
    const cases = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { input_sets: { prefix: string; tolerance: number }[] };
    const io = readSafetensors(path.join(dir, 'io.safetensors'));
    const unet = await loadUNet(dir, { device: 'cuda', precision });
    try {
      for (const set of cases.input_sets) {
        const sample = io.get(`${set.prefix}sample`)!;
        const t = numbers(io.get(`${set.prefix}timestep`)!);
        const labels = io.get(`${set.prefix}class_labels`);
        const x = Tensor.fromFloat32(float32(sample), sample.shape);
        const y = await unet.forward(x, t.length === 1 ? t[0] : t, labels ? { classLabels: numbers(labels) } : {});
        const want = numbers(io.get(`${set.prefix}out_f64`)!);
        const err = maxAbsDiff(await y.toFloat32Array(), want);
        const tol = precision === 'fp32' ? set.tolerance : tolerance(set.tolerance, precision, maxAbs(want));
        record('unet fixtures', `${name} ${set.prefix.slice(0, -1)} ${precision}`, { maxAbsError: err, tolerance: tol }, err <= tol);
        x.dispose();
        y.dispose();
      }
    } finally {
      unet.dispose();
    }
  }
}

// 2. End-to-end samplings against diffusers (as test/e2e-fixtures.test.ts, on the device).
function row(t: StTensor, i: number): Tensor {
  const shape = t.shape.slice(1);
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromFloat32(float32(t).subarray(i * n, (i + 1) * n), shape);
}
function rowNumbers(t: StTensor, i: number): number[] {
  const n = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return numbers(t).slice(i * n, (i + 1) * n);
}

async function e2eFixtures(precision: Precision): Promise<void> {
  for (const name of ['ddim10_unet_basic', 'ddpm20_unet_basic', 'cm_onestep_unet_cm_mirror', 'cm_2step_22_0_unet_cm_mirror']) {
    const dir = path.join(DIFFUSERS, 'e2e', name);
    const json = JSON.parse(readFileSync(path.join(dir, 'case.json'), 'utf8'));
    const T = readSafetensors(path.join(dir, 'trace.safetensors'));
    const unet = await loadUNet(path.join(dir, json.model_folder), { device: 'cuda', precision });
    try {
      const config = parsePythonJson(readFileSync(path.join(dir, 'scheduler_config.json'), 'utf8'), name) as Record<string, unknown>;
      const scheduler = schedulerFromConfig(config) as Scheduler;
      const call = json.set_timesteps_call;
      (scheduler.setTimesteps as (s: unknown) => void).call(scheduler, call.timesteps ? { timesteps: call.timesteps } : call.num_inference_steps);
      const labels = T.get('class_labels') ? numbers(T.get('class_labels')!) : undefined;
      const drawn = T.get('noise_drawn') ? numbers(T.get('noise_drawn')!) : null;
      const eta = json.step_kwargs?.eta;
      let worst = 0;
      let worstRatio = 0;
      let x = Tensor.fromFloat32(float32(T.get('x_init')!), T.get('x_init')!.shape);
      for (let i = 0; i < json.num_steps; i++) {
        const t = scheduler.timesteps[i];
        const input = await scheduler.scaleModelInput(x, t);
        const out = await unet.forward(input, t, labels ? { classLabels: labels } : {});
        const noise = drawn?.[i] ? row(T.get('noise')!, i) : undefined;
        const r = await scheduler.step(out, t, x, { noise, ...(eta !== undefined ? { eta } : {}) } as object);
        for (const [got, key] of [[out, 'model_output'], [r.prevSample, 'sample']] as const) {
          const want = rowNumbers(T.get(`${key}_f64`)!, i);
          const err = maxAbsDiff(await got.toFloat32Array(), want);
          const tol = precision === 'fp32' ? json.tolerance : tolerance(json.tolerance, precision, maxAbs(want));
          worst = Math.max(worst, err);
          worstRatio = Math.max(worstRatio, err / tol);
        }
        if (input !== x) input.dispose();
        x.dispose();
        out.dispose();
        r.predOriginalSample?.dispose();
        x = r.prevSample;
      }
      x.dispose();
      record('e2e fixtures', `${name} ${precision}`, { maxAbsError: worst, errorOverTolerance: Number(worstRatio.toFixed(3)) }, worstRatio <= 1);
    } finally {
      unet.dispose();
    }
  }
}

// 3. Whole samplings, CPU vs CUDA.
const SAMPLINGS: { name: string; dir: string; options: GenerateOptions }[] = [
  { name: 'ddim10', dir: 'ddim', options: { batchSize: 4, steps: 10, seed: 1234, sampler: 'ddim' } },
  { name: 'ddpm20', dir: 'ddim', options: { batchSize: 4, steps: 20, seed: 5, sampler: 'ddpm' } },
  { name: 'pc10', dir: 'ddim', options: { batchSize: 4, steps: 10, seed: 6, sampler: 'pc' } },
  { name: 'consistency1', dir: 'cm', options: { batchSize: 4, steps: 1, seed: 99, sampler: 'consistency' } },
  { name: 'consistency2', dir: 'cm', options: { batchSize: 4, steps: 2, seed: 7, sampler: 'consistency' } },
];
// fp32: at most one level (rounding at a level boundary); TF32: a few levels.
const LIMITS = { fp32: { max: 1, mean: 0.01 }, tf32: { max: 16, mean: 1 } } as const;

async function samplings(precision: 'fp32' | 'tf32'): Promise<void> {
  for (const c of SAMPLINGS) {
    const cpu = await loadPipeline(path.join(PIPELINES, c.dir));
    const gpu = await loadPipeline(path.join(PIPELINES, c.dir), { device: 'cuda', precision });
    try {
      const a = await cpu.generate(c.options);
      const b = await gpu.generate(c.options);
      let max = 0;
      let sum = 0;
      let count = 0;
      for (let i = 0; i < a.images.length; i++)
        for (let j = 0; j < a.images[i].data.length; j++) {
          const d = Math.abs(a.images[i].data[j] - b.images[i].data[j]);
          max = Math.max(max, d);
          sum += d;
          count++;
        }
      const mean = sum / count;
      record('samplings CPU vs CUDA', `${c.name} ${precision}`, { maxLevels: max, meanLevels: Number(mean.toFixed(4)) },
        max <= LIMITS[precision].max && mean <= LIMITS[precision].mean);
    } finally {
      cpu.dispose();
      gpu.dispose();
    }
  }
}

// 4. One-step consistency images/s, end to end through the API.
function benchPipelineDir(): string {
  const model = MODELS.imagenet.generate;
  const dir = path.join(ROOT, 'bench', '.weights', 'cd-imagenet64-pipeline');
  const unetDir = path.join(dir, 'unet');
  const stamp = JSON.stringify({ generator: 'test/helpers/random-model.ts', seed: model.seed, config: model.config });
  if (!existsSync(path.join(unetDir, 'stamp.json')) || readFileSync(path.join(unetDir, 'stamp.json'), 'utf8') !== stamp) {
    mkdirSync(unetDir, { recursive: true });
    writeRandomModel(unetDir, model.config, model.seed);
    writeFileSync(path.join(unetDir, 'stamp.json'), stamp);
  }
  mkdirSync(path.join(dir, 'scheduler'), { recursive: true });
  writeFileSync(
    path.join(dir, 'model_index.json'),
    JSON.stringify({ _class_name: 'ConsistencyModelPipeline', unet: ['diffusers', 'UNet2DModel'], scheduler: ['diffusers', 'CMStochasticIterativeScheduler'] }),
  );
  writeFileSync(
    path.join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify({ _class_name: 'CMStochasticIterativeScheduler', num_train_timesteps: 40, sigma_min: 0.002, sigma_max: 80.0, sigma_data: 0.5, s_noise: 1.0, rho: 7.0, clip_denoised: true }),
  );
  return dir;
}

async function consistencyBench(): Promise<void> {
  const t0 = performance.now();
  const dir = benchPipelineDir();
  console.log(`(cd_imagenet64 weights ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  const pipe = await loadPipeline(dir, { device: 'cuda' });
  try {
    const batch = 16;
    const options = { batchSize: batch, steps: 1, sampler: 'consistency' as const, classLabels: MODELS.imagenet.classLabel };
    await pipe.generate({ ...options, seed: 0 }); // warm-up: allocates the arena
    const times: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const s = performance.now();
      const r = await pipe.generate({ ...options, seed: i });
      times.push(performance.now() - s);
      if (r.images.length !== batch) throw new Error(`got ${r.images.length} images for a batch of ${batch}`);
    }
    times.sort((a, b) => a - b);
    const ms = times[2];
    record('consistency', `one step, cd_imagenet64 config, batch ${batch}, tf32`, {
      medianMs: Number(ms.toFixed(2)),
      imagesPerSecond: Number(((1000 * batch) / ms).toFixed(1)),
    }, true);
  } finally {
    pipe.dispose();
  }
}

async function main(): Promise<void> {
  const out = process.argv[2];
  const steps: [string, () => Promise<void>][] = [
    ['unet fixtures fp32', () => unetFixtures('fp32')],
    ['unet fixtures tf32', () => unetFixtures('tf32')],
    ['unet fixtures bf16', () => unetFixtures('bf16')],
    ['e2e fixtures fp32', () => e2eFixtures('fp32')],
    ['e2e fixtures tf32', () => e2eFixtures('tf32')],
    ['samplings fp32', () => samplings('fp32')],
    ['samplings tf32', () => samplings('tf32')],
    ['consistency bench', consistencyBench],
  ];
  for (const [name, run] of steps) {
    const t0 = performance.now();
    try {
      await run();
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      failures.push(`${name}: ${message}`);
      console.log(`FAIL ${name}: ${message}`);
    }
    console.log(`== ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  if (out) writeFileSync(out, JSON.stringify({ results, failures }, null, 2));
  if (failures.length) {
    console.error(`API checks failed: ${failures.join('; ')}`);
    process.exit(1);
  }
}

await main();
