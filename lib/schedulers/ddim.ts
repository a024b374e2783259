/**
 * DDIMScheduler — Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", eq. 12 with
 * the σ_t(η) of eq. 16, plus v-prediction (Salimans & Ho 2022), zero-terminal-SNR schedules
 * (Lin et al. 2024) and dynamic thresholding. Config keys, defaults and results are those of
 * diffusers' DDIMScheduler.
 *
 * One step from t to t' = t − ⌊T/n⌋ (ᾱ_{t'} = final_alpha_cumprod for t' < 0, which is 1 with
 * set_alpha_to_one, else ᾱ_0):
 *   x̂0, ε̂  from the model output (epsilon | sample | v_prediction); x̂0 clipped/thresholded,
 *           ε̂ not recomputed from the clipped x̂0 unless use_clipped_model_output
 *   σ_t    = η·√((1−ᾱ_{t'})/(1−ᾱ_t)·(1 − ᾱ_t/ᾱ_{t'}))                      (eq. 16)
 *   x_t'   = √ᾱ_{t'}·x̂0 + √(1 − ᾱ_{t'} − σ_t²)·ε̂ + σ_t·z                    (eq. 12)
 * η = 0 is the deterministic DDIM sampler (a discretisation of the probability-flow ODE);
 * η = 1 gives DDPM's posterior variance. One fused kernel call per step.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { alphasCumprod, alphasFromBetas, makeBetas, rescaleZeroTerminalSnr, type BetaSchedule } from '../schedules/betas.js';
import { integerTimesteps, type TimestepSpacing } from '../schedules/spacing.js';
import { affineStep, stepNoise, type AffineStepArgs } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, timestepList, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import type { PredictionType } from './ddpm.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export interface DDIMSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: Exclude<BetaSchedule, 'sigmoid'>;
  trained_betas: number[] | null;
  clip_sample: boolean;
  set_alpha_to_one: boolean;
  steps_offset: number;
  prediction_type: PredictionType;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  timestep_spacing: TimestepSpacing;
  rescale_betas_zero_snr: boolean;
}

export const DDIM_DEFAULTS: Readonly<DDIMSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  clip_sample: true,
  set_alpha_to_one: true,
  steps_offset: 0,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  rescale_betas_zero_snr: false,
} as DDIMSchedulerConfig);

const SPEC: ConfigSpec<DDIMSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 1, max: 1_000_000 },
  beta_start: { type: 'number', min: 0, max: 1 },
  beta_end: { type: 'number', min: 0, max: 1 },
  beta_schedule: { type: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
  trained_betas: { type: 'numbers', nullable: true },
  clip_sample: { type: 'boolean' },
  set_alpha_to_one: { type: 'boolean' },
  steps_offset: { type: 'integer', min: 0 },
  prediction_type: { type: 'enum', values: ['epsilon', 'sample', 'v_prediction'] },
  thresholding: { type: 'boolean' },
  dynamic_thresholding_ratio: { type: 'number', min: 0, max: 1 },
  clip_sample_range: { type: 'number', positive: true },
  sample_max_value: { type: 'number', min: 1 },
  timestep_spacing: { type: 'enum', values: ['leading', 'trailing', 'linspace'] },
  rescale_betas_zero_snr: { type: 'boolean' },
};

export interface DDIMStepOptions extends StepOptions {
  /** η of eq. 16: 0 (default) is deterministic, 1 is DDPM-like. */
  eta?: number;
  /** Recompute ε̂ from the clipped x̂0 (diffusers' use_clipped_model_output). */
  useClippedModelOutput?: boolean;
  /** Explicit noise for η > 0 (diffusers' variance_noise); same as `noise`. */
  varianceNoise?: Tensor;
}

export class DDIMScheduler implements Scheduler {
  readonly className = 'DDIMScheduler';
  readonly config: Readonly<DDIMSchedulerConfig>;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** ᾱ used after the last step: 1 (set_alpha_to_one) or ᾱ_0. */
  readonly finalAlphaCumprod: number;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  numInferenceSteps: number | null = null;

  constructor(config?: SchedulerConfigInput<DDIMSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('DDIMScheduler', DDIM_DEFAULTS, SPEC, config));
    let betas = makeBetas(this.config, ['linear', 'scaled_linear', 'squaredcos_cap_v2'], 'DDIMScheduler');
    if (this.config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    this.alphas = alphasFromBetas(betas);
    this.alphasCumprod = alphasCumprod(betas);
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
    const T = this.betas.length;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get numTrainTimesteps(): number {
    return this.betas.length;
  }

  setTimesteps(numInferenceSteps: number): void {
    const n = checkSteps(numInferenceSteps, this.numTrainTimesteps, 'DDIMScheduler');
    this.numInferenceSteps = n;
    this.timesteps = integerTimesteps(this.config.timestep_spacing, this.numTrainTimesteps, n, this.config.steps_offset);
  }

  /** t − ⌊T/n⌋ whatever the spacing (diffusers' rule). */
  previousTimestep(t: number): number {
    if (this.numInferenceSteps === null)
      throw new FusediffError('E_ARGUMENT', 'DDIMScheduler: call setTimesteps(n) before step()');
    return t - Math.floor(this.numTrainTimesteps / this.numInferenceSteps);
  }

  async scaleModelInput(sample: Tensor): Promise<Tensor> {
    return sample;
  }

  private alphaBarAt(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.numTrainTimesteps)
      throw new FusediffError('E_ARGUMENT', `DDIMScheduler: timestep ${t} must be an integer in [0, ${this.numTrainTimesteps})`);
    return this.alphasCumprod[t];
  }

  /** The fused kernel's coefficients for a step from t (float64). */
  stepCoefficients(t: number, eta = 0, useClippedModelOutput = false): Omit<AffineStepArgs, 'x' | 'm' | 'noise' | 'y'> {
    if (typeof eta !== 'number' || !(eta >= 0) || !Number.isFinite(eta))
      throw new FusediffError('E_ARGUMENT', `DDIMScheduler: eta must be a number >= 0, got ${String(eta)}`);
    const c = this.config;
    const prevT = this.previousTimestep(t);
    const abT = this.alphaBarAt(t);
    const abP = prevT >= 0 ? this.alphaBarAt(prevT) : this.finalAlphaCumprod;
    const bT = 1 - abT;
    const sa = Math.sqrt(abT);
    const sb = Math.sqrt(bT);
    if (c.prediction_type === 'epsilon' && abT === 0)
      throw new FusediffError('E_ARGUMENT', `DDIMScheduler: ᾱ = 0 at timestep ${t}: an epsilon model cannot predict x0 there (use v_prediction)`);
    if (c.prediction_type === 'sample' && bT === 0)
      throw new FusediffError('E_ARGUMENT', `DDIMScheduler: 1 − ᾱ = 0 at timestep ${t}: a sample model cannot predict ε there`);
    // x̂0 = ax·x + am·m;  ε̂ = ex·x + em·m (+ e0·x̂0 when recomputed from the clipped x̂0).
    let ax = 0, am = 0, ex = 0, em = 0, e0 = 0;
    if (c.prediction_type === 'epsilon') {
      ax = 1 / sa;
      am = -sb / sa;
      em = 1;
    } else if (c.prediction_type === 'sample') {
      am = 1;
      ex = 1 / sb;
      em = -sa / sb;
    } else {
      ax = sa;
      am = -sb;
      ex = sb;
      em = sa;
    }
    if (useClippedModelOutput) {
      ex = 1 / sb;
      em = 0;
      e0 = -sa / sb;
    }
    const variance = ((1 - abP) / bT) * (1 - abT / abP); // eq. 16 without η
    const std = eta * Math.sqrt(variance);
    const dir = Math.sqrt(Math.max(1 - abP - std * std, 0));
    const args: Omit<AffineStepArgs, 'x' | 'm' | 'noise' | 'y'> = {
      ax,
      am,
      b0: Math.sqrt(abP) + dir * e0,
      bx: dir * ex,
      bm: dir * em,
    };
    if (eta > 0) args.bz = std;
    if (c.thresholding) args.threshold = { ratio: c.dynamic_thresholding_ratio, max: c.sample_max_value };
    else if (c.clip_sample) args.clamp = [-c.clip_sample_range, c.clip_sample_range];
    return args;
  }

  /** One step of eq. 12 from timestep t; noise (η > 0) from `noise`/`varianceNoise` or `generator`. */
  async step(modelOutput: Tensor, t: number, sample: Tensor, options: DDIMStepOptions = {}): Promise<SchedulerOutput> {
    const eta = options.eta ?? 0;
    const args = this.stepCoefficients(t, eta, options.useClippedModelOutput ?? false);
    const noise =
      eta > 0 ? stepNoise({ ...options, noise: options.noise ?? options.varianceNoise }, sample.shape[0], () => new Generator()) : null;
    const { out, x0 } = await affineStep({ ...args, x: sample, m: modelOutput, noise, guidanceScale: options.guidanceScale, wantX0: true });
    return { prevSample: out, predOriginalSample: x0 };
  }

  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const ab = timestepList(t, original.shape[0]).map((v) => this.alphaBarAt(v));
    return (await affineStep({ x: original, m: noise, bx: ab.map(Math.sqrt), bm: ab.map((a) => Math.sqrt(1 - a)) })).out;
  }

  async getVelocity(sample: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const ab = timestepList(t, sample.shape[0]).map((v) => this.alphaBarAt(v));
    return (await affineStep({ x: sample, m: noise, bx: ab.map((a) => -Math.sqrt(1 - a)), bm: ab.map(Math.sqrt) })).out;
  }
}
