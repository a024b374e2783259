/**
 * EulerDiscreteScheduler — Karras et al. 2022, "Elucidating the Design Space of
 * Diffusion-Based Generative Models", Algorithm 2 (the Euler step, with optional "churn"),
 * run on the σ_t = √((1 − ᾱ_t)/ᾱ_t) grid of a discrete VP model, with optional Karras σ
 * spacing (their eq. 5). Config keys, defaults and results are those of diffusers'
 * EulerDiscreteScheduler.
 *
 * Step i (σ = σ_i, σ' = σ_{i+1}, z ~ N(0, I)):
 *   γ   = min(s_churn/n, √2 − 1) if s_tmin ≤ σ ≤ s_tmax else 0;   σ̂ = σ(1 + γ)
 *   x̂   = x + s_noise·√(σ̂² − σ²)·z                                   (churn, γ > 0 only)
 *   x̂0  = x̂ − σ̂·m  (epsilon) | m·(−σ/√(σ²+1)) + x̂/(σ²+1)  (v_prediction) | m  (sample)
 *   x'  = x̂ + (x̂ − x̂0)/σ̂ · (σ' − σ̂)                                  (Euler step of dx/dσ = (x − D)/σ)
 * The model input is x/√(σ² + 1). One fused kernel call per step.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { alphasCumprod, linspaceF64, makeBetas, rescaleZeroTerminalSnr, type BetaSchedule } from '../schedules/betas.js';
import { interpOnIndex, karrasSigmas, sigmaToT, trainingSigmas } from '../schedules/karras.js';
import { floatTimesteps, type TimestepSpacing } from '../schedules/spacing.js';
import { affineStep, stepNoise } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import { firstStepIndex, sigmasAt } from './sigma_index.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export interface EulerDiscreteSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: Exclude<BetaSchedule, 'sigmoid'>;
  trained_betas: number[] | null;
  prediction_type: 'epsilon' | 'v_prediction' | 'sample' | 'original_sample';
  interpolation_type: 'linear' | 'log_linear';
  use_karras_sigmas: boolean;
  sigma_min: number | null;
  sigma_max: number | null;
  timestep_spacing: TimestepSpacing;
  timestep_type: 'discrete' | 'continuous';
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
}

export const EULER_DEFAULTS: Readonly<EulerDiscreteSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  interpolation_type: 'linear',
  use_karras_sigmas: false,
  sigma_min: null,
  sigma_max: null,
  timestep_spacing: 'linspace',
  timestep_type: 'discrete',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as EulerDiscreteSchedulerConfig);

const SPEC: ConfigSpec<EulerDiscreteSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 2, max: 1_000_000 },
  beta_start: { type: 'number', min: 0, max: 1 },
  beta_end: { type: 'number', min: 0, max: 1 },
  beta_schedule: { type: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
  trained_betas: { type: 'numbers', nullable: true },
  prediction_type: { type: 'enum', values: ['epsilon', 'v_prediction', 'sample', 'original_sample'] },
  interpolation_type: { type: 'enum', values: ['linear', 'log_linear'] },
  use_karras_sigmas: { type: 'boolean' },
  sigma_min: { type: 'number', positive: true, nullable: true },
  sigma_max: { type: 'number', positive: true, nullable: true },
  timestep_spacing: { type: 'enum', values: ['leading', 'trailing', 'linspace'] },
  timestep_type: { type: 'enum', values: ['discrete', 'continuous'] },
  steps_offset: { type: 'integer', min: 0 },
  rescale_betas_zero_snr: { type: 'boolean' },
};

export interface EulerStepOptions extends StepOptions {
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  sNoise?: number;
}

export class EulerDiscreteScheduler implements Scheduler {
  readonly className: string = 'EulerDiscreteScheduler';
  readonly config: Readonly<EulerDiscreteSchedulerConfig>;
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  /** σ_i of the schedule then 0 (float32 values). */
  sigmas: Float64Array;
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config?: SchedulerConfigInput<EulerDiscreteSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('EulerDiscreteScheduler', EULER_DEFAULTS, SPEC, config));
    let betas = makeBetas(this.config, ['linear', 'scaled_linear', 'squaredcos_cap_v2'], 'EulerDiscreteScheduler');
    if (this.config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    const ab = alphasCumprod(betas);
    if (this.config.rescale_betas_zero_snr) ab[ab.length - 1] = 2 ** -24; // keeps σ finite (diffusers)
    this.alphasCumprod = ab;
    const s = trainingSigmas(ab);
    const T = ab.length;
    this.sigmas = Float64Array.from([...Array.from(s).reverse(), 0]);
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get numTrainTimesteps(): number {
    return this.betas.length;
  }

  /** max σ (linspace/trailing) or √(max σ² + 1) (leading). */
  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmas) max = Math.max(max, s);
    return this.config.timestep_spacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const T = this.numTrainTimesteps;
    const n = checkSteps(numInferenceSteps, T, this.className);
    this.numInferenceSteps = n;
    let timesteps: number[] = floatTimesteps(c.timestep_spacing, T, n, c.steps_offset);
    const train = trainingSigmas(this.alphasCumprod);
    const logSigmas = train.map((v) => Math.fround(Math.log(v)));
    let sigmas: Float64Array;
    if (c.interpolation_type === 'linear') {
      sigmas = Float64Array.from(timesteps, (t) => interpOnIndex(t, train));
    } else {
      const lo = Math.log(train[0]);
      const hi = Math.log(train[T - 1]);
      sigmas = Float64Array.from(linspaceF64(hi, lo, n + 1), Math.exp);
    }
    if (c.use_karras_sigmas) {
      const sMin = c.sigma_min ?? sigmas[sigmas.length - 1];
      const sMax = c.sigma_max ?? sigmas[0];
      sigmas = karrasSigmas(n, sMin, sMax, 7);
      timesteps = Array.from(sigmas, (s) => Math.fround(sigmaToT(s, logSigmas)));
    }
    const sig32 = Array.from(sigmas, Math.fround);
    if (c.timestep_type === 'continuous' && c.prediction_type === 'v_prediction')
      timesteps = sig32.map((s) => Math.fround(0.25 * Math.log(s)));
    this.timesteps = timesteps;
    this.sigmas = Float64Array.from([...sig32, 0]);
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  protected indexFor(t: number): number {
    if (this.stepIndex !== null) return this.stepIndex;
    if (this.beginIndex !== null) return (this.stepIndex = this.beginIndex);
    return (this.stepIndex = firstStepIndex(this.timesteps, t, this.className));
  }

  protected advance(): void {
    this.stepIndex = (this.stepIndex ?? 0) + 1;
  }

  /** x / √(σ_i² + 1). */
  async scaleModelInput(sample: Tensor, t: number): Promise<Tensor> {
    const sigma = this.sigmas[this.indexFor(t)];
    return (await affineStep({ x: sample, bx: 1 / Math.sqrt(sigma * sigma + 1) })).out;
  }

  /** x̂0 = ax·x + am·m for this prediction type at σ (σ̂ for ε). */
  protected x0Coefficients(sigma: number, sigmaHat: number): { ax: number; am: number } {
    switch (this.config.prediction_type) {
      case 'epsilon':
        return { ax: 1, am: -sigmaHat };
      case 'v_prediction':
        return { ax: 1 / (sigma * sigma + 1), am: -sigma / Math.sqrt(sigma * sigma + 1) };
      default:
        return { ax: 0, am: 1 };
    }
  }

  async step(modelOutput: Tensor, t: number, sample: Tensor, options: EulerStepOptions = {}): Promise<SchedulerOutput> {
    const { sChurn = 0, sTmin = 0, sTmax = Infinity, sNoise = 1 } = options;
    const i = this.indexFor(t);
    if (i + 1 >= this.sigmas.length) throw new FusediffError('E_ARGUMENT', `${this.className}: stepped past the last timestep`);
    const sigma = this.sigmas[i];
    const gamma = sTmin <= sigma && sigma <= sTmax ? Math.min(sChurn / (this.sigmas.length - 1), Math.SQRT2 - 1) : 0;
    const sigmaHat = sigma * (gamma + 1);
    const k = gamma > 0 ? sNoise * Math.sqrt(sigmaHat * sigmaHat - sigma * sigma) : 0; // x̂ = x + k·z
    const { ax, am } = this.x0Coefficients(sigma, sigmaHat);
    const r = (this.sigmas[i + 1] - sigmaHat) / sigmaHat; // dt/σ̂
    const noise = k > 0 ? stepNoise(options, sample.shape[0], () => new Generator()) : null;
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      noise,
      ax,
      am,
      az: ax * k,
      bx: 1 + r,
      b0: -r,
      bz: (1 + r) * k,
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    this.advance();
    return { prevSample: out, predOriginalSample: x0 };
  }

  /** x + σ_t·noise for the schedule's σ at timestep t (per image). */
  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const sig = sigmasAt(this.timesteps, this.sigmas, t, original.shape[0], this.className);
    return (await affineStep({ x: original, m: noise, bx: 1, bm: sig })).out;
  }
}
