/**
 * The sampling loop of the scheduler classes (DDPM, DDIM, consistency, Euler, Euler-a,
 * DPM-Solver++): x_T = initNoiseSigma·z, then per timestep scale → model → step, each step
 * one model forward (batched with its unconditional half under guidance) and one fused kernel
 * call, all on native tensors.
 *
 * Beyond the plain loop:
 *   - starting late (SDEdit, Meng et al. 2022; diffusers' img2img): with `init` and a
 *     `strength` s ∈ (0, 1], the loop skips the first n − ⌊n·s⌋ timesteps and starts from
 *     the forward process q(x_t | x_0 = init) at the first remaining one;
 *   - truncated sampling: `stopAfter` k runs only k steps and returns the clean sample the last
 *     step predicted (x̂0) instead of x_t;
 *   - AbortSignal (E_ABORTED) and a progress callback with per-step timings.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import type { Scheduler, StepOptions } from '../schedulers/types.js';
import { affineStep } from '../step.js';
import type { Tensor } from '../tensor.js';
import { asModelFn, checkGuidance, evaluate, throwIfAborted, type GuidanceOptions, type Model } from './model.js';

export interface Progress {
  /** Steps done (1-based) and the number the run will take. */
  step: number;
  totalSteps: number;
  timestep: number;
  /** Milliseconds this step took. */
  stepMs: number;
}

export interface SampleLoopOptions extends GuidanceOptions {
  model: Model;
  scheduler: Scheduler;
  /** Number of inference steps, or an explicit timestep list (DDPM, consistency): passed to setTimesteps. */
  steps: number | { timesteps: readonly number[] };
  /** [batch, channels, height, width]. */
  shape: readonly number[];
  generator?: Generator;
  /** Start from these x_T instead of drawing them (already scaled by initNoiseSigma). */
  latents?: Tensor;
  /** Start late from a clean image batch (img2img / SDEdit). */
  init?: { image: Tensor; strength: number };
  /** Run only this many steps and return the predicted clean sample. */
  stopAfter?: number;
  /** Replay: the noise step i adds (e.g. recorded from another run); undefined falls back to the generator. */
  noiseAt?: (stepIndex: number) => Tensor | undefined;
  /** Extra options of every step (e.g. { eta } for DDIM). */
  stepOptions?: Record<string, unknown>;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface SampleLoopResult {
  sample: Tensor;
  /** The timesteps actually visited. */
  timesteps: number[];
  stepMs: number[];
  totalMs: number;
  truncated: boolean;
}

export function checkShape(shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1))
    throw new FusediffError('E_SHAPE', `shape must be [batch, channels, height, width] of positive integers, got [${String(shape)}]`);
  return [...shape];
}

/** x_T = σ·z for the generator's next draw, one kernel call. */
export async function initialNoise(shape: readonly number[], sigma: number, generator: Generator): Promise<Tensor> {
  const draw = generator.draw(shape[0]);
  return (await affineStep({ shape, noise: draw, bz: sigma })).out;
}

export async function sampleLoop(o: SampleLoopOptions): Promise<SampleLoopResult> {
  const started = performance.now();
  const shape = checkShape(o.shape);
  const batch = shape[0];
  checkGuidance(o, batch);
  const model = asModelFn(o.model);
  const generator = o.generator ?? new Generator();
  const s = o.scheduler;
  throwIfAborted(o.signal);
  s.reset?.();
  (s.setTimesteps as (steps: SampleLoopOptions['steps']) => void).call(s, o.steps);
  let timesteps = [...s.timesteps];

  let x: Tensor;
  if (o.init) {
    const { image, strength } = o.init;
    if (typeof strength !== 'number' || !(strength > 0 && strength <= 1))
      throw new FusediffError('E_ARGUMENT', `strength must be in (0, 1], got ${String(strength)}`);
    if (image.shape.join() !== shape.join())
      throw new FusediffError('E_SHAPE', `the init image [${image.shape.join(', ')}] must have the sample shape [${shape.join(', ')}]`);
    const n = timesteps.length;
    const initSteps = Math.min(Math.floor(n * strength), n);
    const start = Math.max(n - initSteps, 0);
    if (start >= n) throw new FusediffError('E_ARGUMENT', `strength ${strength} with ${n} steps leaves no step to run`);
    timesteps = timesteps.slice(start);
    s.setBeginIndex?.(start);
    const noise = await generator.randn(shape);
    try {
      x = await s.addNoise(image, noise, timesteps[0]);
    } finally {
      noise.dispose();
    }
  } else if (o.latents) {
    if (o.latents.shape.join() !== shape.join())
      throw new FusediffError('E_SHAPE', `latents [${o.latents.shape.join(', ')}] must have the shape [${shape.join(', ')}]`);
    x = (await affineStep({ x: o.latents, bx: 1 })).out; // a copy the loop may dispose
  } else {
    x = await initialNoise(shape, s.initNoiseSigma, generator);
  }

  let total = timesteps.length;
  if (o.stopAfter !== undefined) {
    if (!Number.isInteger(o.stopAfter) || o.stopAfter < 1)
      throw new FusediffError('E_ARGUMENT', `stopAfter must be an integer >= 1, got ${String(o.stopAfter)}`);
    total = Math.min(total, o.stopAfter);
  }
  const stepMs: number[] = [];
  const stepOptions: StepOptions & Record<string, unknown> = { ...(o.stepOptions ?? {}), generator };
  let x0: Tensor | null = null;
  try {
    for (let i = 0; i < total; i++) {
      throwIfAborted(o.signal);
      const t0 = performance.now();
      const t = timesteps[i];
      const input = await s.scaleModelInput(x, t);
      let evaluation;
      try {
        evaluation = await evaluate(model, input, new Array<number>(batch).fill(t), o);
      } finally {
        if (input !== x) input.dispose();
      }
      let out;
      try {
        out = await s.step(evaluation.output, t, x, { ...stepOptions, noise: o.noiseAt?.(i), guidanceScale: evaluation.guidanceScale });
      } finally {
        evaluation.output.dispose();
      }
      x.dispose();
      x = out.prevSample;
      if (x0 && !s.retainsPredOriginal) x0.dispose();
      x0 = out.predOriginalSample;
      stepMs.push(performance.now() - t0);
      o.onProgress?.({ step: i + 1, totalSteps: total, timestep: t, stepMs: stepMs[i] });
    }
    const truncated = total < timesteps.length;
    let sample = x;
    if (truncated) {
      if (!x0) throw new FusediffError('E_UNSUPPORTED', `${s.className} does not predict a clean sample; truncated sampling needs one`);
      sample = s.retainsPredOriginal ? (await affineStep({ x: x0, bx: 1 })).out : x0;
      if (!s.retainsPredOriginal) x0 = null;
      x.dispose();
    }
    if (x0 && !s.retainsPredOriginal) x0.dispose();
    s.reset?.();
    return { sample, timesteps: timesteps.slice(0, total), stepMs, totalMs: performance.now() - started, truncated };
  } catch (e) {
    x.dispose();
    if (x0 && !s.retainsPredOriginal) x0.dispose();
    s.reset?.();
    throw e;
  }
}
