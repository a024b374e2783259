/**
 * DDPMScheduler — ancestral sampling of Ho, Jain & Abbeel 2020, "Denoising Diffusion
 * Probabilistic Models" (eqs. 6, 7, 15), with the learned variances of Nichol & Dhariwal 2021,
 * "Improved Denoising Diffusion Probabilistic Models" (eq. 15), v-prediction (Salimans & Ho
 * 2022) and Imagen's dynamic thresholding (Saharia et al. 2022). Config keys, defaults and
 * results are those of diffusers' DDPMScheduler.
 *
 * One step from t to t' = t − ⌊T/n⌋ (with ᾱ_{t'} = 1 for t' < 0):
 *   x̂0   = (x − √(1−ᾱ_t)·m)/√ᾱ_t | m | √ᾱ_t·x − √(1−ᾱ_t)·m     (epsilon | sample | v_prediction; eq. 15)
 *          then clipped to ±clip_sample_range or dynamically thresholded
 *   μ̃    = (√ᾱ_{t'}·β_t/(1−ᾱ_t))·x̂0 + (√α_t·(1−ᾱ_{t'})/(1−ᾱ_t))·x,  α_t = ᾱ_t/ᾱ_{t'}, β_t = 1 − α_t   (eq. 7)
 *   x_t' = μ̃ + σ_t·z   for t > 0, with σ_t² = β̃_t = (1−ᾱ_{t'})/(1−ᾱ_t)·β_t (fixed_small), β_t (fixed_large),
 *          v (learned), exp(frac·ln β_t + (1−frac)·ln β̃_t), frac = (v+1)/2 (learned_range, Nichol & Dhariwal eq. 15)
 * The whole step is one fused kernel call.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { alphasCumprod, alphasFromBetas, makeBetas, rescaleZeroTerminalSnr, type BetaSchedule } from '../schedules/betas.js';
import { integerTimesteps, type TimestepSpacing } from '../schedules/spacing.js';
import { affineStep, stepNoise, type AffineStepArgs } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, timestepList, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';
export type DDPMVarianceType = 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'learned' | 'learned_range';

export interface DDPMSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  variance_type: DDPMVarianceType;
  clip_sample: boolean;
  prediction_type: PredictionType;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
}

export const DDPM_DEFAULTS: Readonly<DDPMSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  variance_type: 'fixed_small',
  clip_sample: true,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  clip_sample_range: 1.0,
  sample_max_value: 1.0,
  timestep_spacing: 'leading',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as DDPMSchedulerConfig);

const SPEC: ConfigSpec<DDPMSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 1, max: 1_000_000 },
  beta_start: { type: 'number', min: 0, max: 1 },
  beta_end: { type: 'number', min: 0, max: 1 },
  beta_schedule: { type: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'] },
  trained_betas: { type: 'numbers', nullable: true },
  variance_type: {
    type: 'enum',
    values: ['fixed_small', 'fixed_small_log', 'fixed_large', 'learned', 'learned_range'],
    unsupported: ['fixed_large_log'],
  },
  clip_sample: { type: 'boolean' },
  prediction_type: { type: 'enum', values: ['epsilon', 'sample', 'v_prediction'] },
  thresholding: { type: 'boolean' },
  dynamic_thresholding_ratio: { type: 'number', min: 0, max: 1 },
  clip_sample_range: { type: 'number', positive: true },
  sample_max_value: { type: 'number', min: 1 },
  timestep_spacing: { type: 'enum', values: ['leading', 'trailing', 'linspace'] },
  steps_offset: { type: 'integer', min: 0 },
  rescale_betas_zero_snr: { type: 'boolean' },
};

export class DDPMScheduler implements Scheduler {
  readonly className = 'DDPMScheduler';
  readonly config: Readonly<DDPMSchedulerConfig>;
  readonly betas: Float64Array;
  readonly alphas: Float64Array;
  /** ᾱ_t (float32 values, as diffusers' table). */
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private customTimesteps = false;

  constructor(config?: SchedulerConfigInput<DDPMSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('DDPMScheduler', DDPM_DEFAULTS, SPEC, config));
    let betas = makeBetas(this.config, ['linear', 'scaled_linear', 'squaredcos_cap_v2', 'sigmoid'], 'DDPMScheduler');
    if (this.config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    this.alphas = alphasFromBetas(betas);
    this.alphasCumprod = alphasCumprod(betas);
    const T = this.betas.length;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get numTrainTimesteps(): number {
    return this.betas.length;
  }

  /**
   * n evenly spaced timesteps (per `timestep_spacing`), or an explicit descending list
   * (`{ timesteps: [...] }`, each below num_train_timesteps).
   */
  setTimesteps(steps: number | { timesteps: readonly number[] }): void {
    const T = this.numTrainTimesteps;
    if (typeof steps === 'object' && steps !== null) {
      const list = [...steps.timesteps];
      if (list.length === 0) throw new FusediffError('E_ARGUMENT', 'DDPMScheduler: custom timesteps must not be empty');
      list.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t >= T)
          throw new FusediffError('E_ARGUMENT', `DDPMScheduler: timestep ${t} must be an integer in [0, ${T})`);
        if (i > 0 && t >= list[i - 1]) throw new FusediffError('E_ARGUMENT', 'DDPMScheduler: custom timesteps must be in descending order');
      });
      this.timesteps = list;
      this.customTimesteps = true;
      this.numInferenceSteps = null;
      return;
    }
    const n = checkSteps(steps, T, 'DDPMScheduler');
    this.numInferenceSteps = n;
    this.customTimesteps = false;
    this.timesteps = integerTimesteps(this.config.timestep_spacing, T, n, this.config.steps_offset);
  }

  /** The timestep a step from t lands on: t − ⌊T/n⌋ (or the next custom timestep; −1 after the last). */
  previousTimestep(t: number): number {
    if (this.customTimesteps) {
      const i = this.timesteps.indexOf(t);
      if (i < 0) throw new FusediffError('E_ARGUMENT', `DDPMScheduler: ${t} is not one of the custom timesteps`);
      return i === this.timesteps.length - 1 ? -1 : this.timesteps[i + 1];
    }
    const n = this.numInferenceSteps ?? this.numTrainTimesteps;
    return t - Math.floor(this.numTrainTimesteps / n);
  }

  async scaleModelInput(sample: Tensor): Promise<Tensor> {
    return sample;
  }

  private alphaBarAt(t: number): number {
    if (!Number.isInteger(t) || t < 0 || t >= this.numTrainTimesteps)
      throw new FusediffError('E_ARGUMENT', `DDPMScheduler: timestep ${t} must be an integer in [0, ${this.numTrainTimesteps})`);
    return this.alphasCumprod[t];
  }

  /**
   * The per-step coefficients of the fused kernel (float64), without the tensors: what
   * `step` computes. Exposed for inspection and tests.
   */
  stepCoefficients(t: number): Omit<AffineStepArgs, 'x' | 'm' | 'noise' | 'y'> & { drawsNoise: boolean } {
    const c = this.config;
    const prevT = this.previousTimestep(t);
    const abT = this.alphaBarAt(t);
    const abP = prevT >= 0 ? this.alphaBarAt(prevT) : 1;
    const bT = 1 - abT;
    const bP = 1 - abP;
    const alphaT = abT / abP;
    const betaT = 1 - alphaT;
    const args: Omit<AffineStepArgs, 'x' | 'm' | 'noise' | 'y'> & { drawsNoise: boolean } = { drawsNoise: t > 0 };
    // x̂0 (eq. 15 and its sample / v variants).
    if (c.prediction_type === 'epsilon') {
      args.ax = 1 / Math.sqrt(abT);
      args.am = -Math.sqrt(bT) / Math.sqrt(abT);
    } else if (c.prediction_type === 'sample') {
      args.am = 1;
    } else {
      args.ax = Math.sqrt(abT);
      args.am = -Math.sqrt(bT);
    }
    if (c.thresholding) args.threshold = { ratio: c.dynamic_thresholding_ratio, max: c.sample_max_value };
    else if (c.clip_sample) args.clamp = [-c.clip_sample_range, c.clip_sample_range];
    // Posterior mean μ̃ (eq. 7).
    args.b0 = (Math.sqrt(abP) * betaT) / bT;
    args.bx = (Math.sqrt(alphaT) * bP) / bT;
    if (t > 0) {
      const variance = Math.max((bP / bT) * betaT, 1e-20); // β̃_t, clamped as diffusers does before its log
      switch (c.variance_type) {
        case 'fixed_small':
        case 'fixed_small_log':
          args.bz = Math.sqrt(variance);
          break;
        case 'fixed_large':
          args.bz = Math.sqrt(betaT);
          break;
        case 'learned':
          args.bz = 1;
          args.noiseScale = 'sqrtv';
          break;
        case 'learned_range': {
          // σ = exp(½(frac·ln β_t + (1 − frac)·ln β̃_t)) with frac = (v + 1)/2  =  exp(e0 + e1·v)
          const minLog = Math.log(variance);
          const maxLog = Math.log(betaT);
          args.bz = 1;
          args.noiseScale = 'expv';
          args.e0 = 0.5 * minLog + 0.25 * (maxLog - minLog);
          args.e1 = 0.25 * (maxLog - minLog);
          break;
        }
      }
    }
    return args;
  }

  /**
   * One reverse step from timestep t. A model output with 2·C channels carries a learned
   * variance in its last C channels (variance_type learned / learned_range). Noise is drawn
   * for t > 0: `options.noise`, or the next draw of `options.generator`.
   */
  async step(modelOutput: Tensor, t: number, sample: Tensor, options: StepOptions = {}): Promise<SchedulerOutput> {
    const { drawsNoise, ...args } = this.stepCoefficients(t);
    const learned = this.config.variance_type === 'learned' || this.config.variance_type === 'learned_range';
    const [mShape, xShape] = [modelOutput.shape, sample.shape];
    if (learned && drawsNoise && mShape[1] !== 2 * xShape[1])
      throw new FusediffError(
        'E_SHAPE',
        `DDPMScheduler: variance_type "${this.config.variance_type}" needs a model output with 2 x ${xShape[1]} channels, got ${mShape[1]}`,
      );
    const noise = drawsNoise ? stepNoise(options, xShape[0], () => new Generator()) : null;
    const { out, x0 } = await affineStep({ ...args, x: sample, m: modelOutput, noise, guidanceScale: options.guidanceScale, wantX0: true });
    return { prevSample: out, predOriginalSample: x0 };
  }

  /** q-sample: √ᾱ_t·x_0 + √(1 − ᾱ_t)·noise, t one timestep or one per image. */
  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const ts = timestepList(t, original.shape[0]);
    const ab = ts.map((v) => this.alphaBarAt(v));
    return (await affineStep({ x: original, m: noise, bx: ab.map(Math.sqrt), bm: ab.map((a) => Math.sqrt(1 - a)) })).out;
  }

  /** The v-prediction target √ᾱ_t·noise − √(1 − ᾱ_t)·x_0. */
  async getVelocity(sample: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const ts = timestepList(t, sample.shape[0]);
    const ab = ts.map((v) => this.alphaBarAt(v));
    return (await affineStep({ x: sample, m: noise, bx: ab.map((a) => -Math.sqrt(1 - a)), bm: ab.map(Math.sqrt) })).out;
  }
}
