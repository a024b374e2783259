/**
 * The fused step kernels (native/kernels/step.h) as typed functions on Tensors. Schedulers
 * and samplers compute their per-image coefficients in float64 and make one of these calls
 * per step; the call runs off the main thread and returns new tensors (inputs are kept).
 *
 *   affineStep:   x̂0 = clip(ax·x + am·m + az·z);   out = bx·x + bm·m + b0·x̂0 + σ_z·z + by·y
 *   langevinStep: the annealed Langevin corrector of Song et al. 2021
 */
import { FusediffError } from './errors.js';
import { native, type NativeAffineOptions } from './native.js';
import type { Generator, NoiseDraw } from './random.js';
import { Tensor } from './tensor.js';

/** A coefficient: one number for every image, or one per image. */
export type Coefficient = number | ArrayLike<number>;

/** Noise of a step: an explicit tensor (replay), a draw of a Generator, or none. */
export type NoiseInput = Tensor | NoiseDraw | null | undefined;

export interface AffineStepArgs {
  x?: Tensor | null;
  /** The model output: [B, C, ...], [B, 2C, ...] (learned variance) or [2B, ...] (guided). */
  m?: Tensor | null;
  noise?: NoiseInput;
  y?: Tensor | null;
  /** Sample shape, when there is no x. */
  shape?: readonly number[];
  ax?: Coefficient;
  am?: Coefficient;
  az?: Coefficient;
  bx?: Coefficient;
  bm?: Coefficient;
  b0?: Coefficient;
  bz?: Coefficient;
  by?: Coefficient;
  e0?: Coefficient;
  e1?: Coefficient;
  clamp?: readonly [number, number];
  threshold?: { ratio: number; max: number };
  noiseScale?: 'constant' | 'sqrtv' | 'expv';
  /** Classifier-free guidance weight w: m holds [unconditional; conditional]. */
  guidanceScale?: number;
  wantX0?: boolean;
}

export function batchOf(args: { x?: Tensor | null; shape?: readonly number[] }): number {
  const shape = args.x ? args.x.shape : args.shape;
  if (!shape || shape.length < 2) throw new FusediffError('E_SHAPE', 'a step needs samples of shape [batch, channels, ...]');
  return shape[0];
}

export function perImage(c: Coefficient | undefined, batch: number, what: string): Float64Array | undefined {
  if (c === undefined) return undefined;
  if (typeof c === 'number') return new Float64Array(batch).fill(c);
  const a = Float64Array.from(c);
  if (a.length === 1) return new Float64Array(batch).fill(a[0]);
  if (a.length !== batch) throw new FusediffError('E_SHAPE', `${what}: ${a.length} values for a batch of ${batch}`);
  return a;
}

function isTensor(v: unknown): v is Tensor {
  return v instanceof Tensor;
}

function handle(t: Tensor | null | undefined) {
  return t ? t.handle : null;
}

export async function affineStep(args: AffineStepArgs): Promise<{ out: Tensor; x0: Tensor | null }> {
  const batch = batchOf(args);
  const o: NativeAffineOptions = {};
  if (!args.x) o.shape = [...(args.shape as number[])];
  for (const k of ['ax', 'am', 'az', 'bx', 'bm', 'b0', 'bz', 'by', 'e0', 'e1'] as const) {
    const v = perImage(args[k], batch, `coefficient ${k}`);
    if (v) o[k] = v;
  }
  if (args.clamp) o.clamp = [args.clamp[0], args.clamp[1]];
  if (args.threshold) o.threshold = [args.threshold.ratio, args.threshold.max];
  if (args.noiseScale) o.noiseScale = args.noiseScale;
  if (args.guidanceScale !== undefined) o.guidance = args.guidanceScale;
  let z: Tensor | null = null;
  if (isTensor(args.noise)) z = args.noise;
  else if (args.noise) {
    o.seeds = args.noise.seeds;
    o.stream = args.noise.stream;
  }
  o.wantX0 = args.wantX0 ?? false;
  const [out, x0] = await native().stepAffine(handle(args.x), handle(args.m), handle(z), handle(args.y), o);
  return { out: new Tensor(out), x0: x0 ? new Tensor(x0) : null };
}

export interface LangevinStepArgs {
  x: Tensor;
  m: Tensor;
  noise: Tensor | NoiseDraw;
  /** score = scoreScale·m (e.g. −1/σ_t for an ε-prediction model, 1 for a score model). */
  scoreScale: Coefficient;
  /** α_i of Song et al.'s corrector (VP: 1 − β_i; VE: 1). */
  alpha?: Coefficient;
  snr: number;
  /** Step size from batch-mean norms (Song et al., diffusers) instead of per image. */
  batchMean?: boolean;
  guidanceScale?: number;
  wantMean?: boolean;
}

export async function langevinStep(args: LangevinStepArgs): Promise<{ out: Tensor; mean: Tensor | null; stepSizes: Float64Array }> {
  const batch = batchOf(args);
  const z = isTensor(args.noise) ? args.noise : null;
  const draw = isTensor(args.noise) ? undefined : args.noise;
  const [out, mean, eps] = await native().stepLangevin(args.x.handle, args.m.handle, handle(z), {
    scoreScale: perImage(args.scoreScale, batch, 'scoreScale')!,
    alpha: perImage(args.alpha, batch, 'alpha'),
    snr: args.snr,
    batchMean: args.batchMean ?? false,
    guidance: args.guidanceScale,
    seeds: draw?.seeds,
    stream: draw?.stream,
    wantMean: args.wantMean ?? false,
  });
  return { out: new Tensor(out), mean: mean ? new Tensor(mean) : null, stepSizes: eps };
}

/** [a; b; ...] along the batch dimension, as a new tensor. */
export async function concatBatch(tensors: readonly Tensor[]): Promise<Tensor> {
  return new Tensor(await native().concatBatch(tensors.map((t) => t.handle)));
}

/** Noise for a step: the explicit tensor if given, else the next draw of the generator. */
export function stepNoise(options: { noise?: Tensor; generator?: Generator } | undefined, batch: number, fallback: () => Generator): Tensor | NoiseDraw {
  if (options?.noise) {
    if (!isTensor(options.noise)) throw new FusediffError('E_ARGUMENT', 'noise must be a fusediff Tensor');
    return options.noise;
  }
  return (options?.generator ?? fallback()).draw(batch);
}
