/**
 * EulerAncestralDiscreteScheduler — the ancestral Euler sampler of k-diffusion (Crowson;
 * Karras et al. 2022 §3 discuss it): a deterministic Euler step of dx/dσ = (x − D)/σ down to
 * σ_down, then fresh noise of standard deviation σ_up, chosen so that σ_down² + σ_up² = σ'²
 * and the variance added equals the DDPM posterior's. Config keys, defaults and results are
 * those of diffusers' EulerAncestralDiscreteScheduler.
 *
 * Step i (σ = σ_i, σ' = σ_{i+1}):
 *   x̂0     = x − σ·m (epsilon) | m·(−σ/√(σ²+1)) + x/(σ²+1) (v_prediction)
 *   σ_up   = √(σ'²(σ² − σ'²)/σ²),   σ_down = √(σ'² − σ_up²)
 *   x'     = x + (x − x̂0)/σ·(σ_down − σ) + σ_up·z
 * The model input is x/√(σ² + 1). One fused kernel call per step.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { alphasCumprod, makeBetas, rescaleZeroTerminalSnr, type BetaSchedule } from '../schedules/betas.js';
import { interpOnIndex, trainingSigmas } from '../schedules/karras.js';
import { floatTimesteps, type TimestepSpacing } from '../schedules/spacing.js';
import { affineStep, stepNoise } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import { firstStepIndex, sigmasAt } from './sigma_index.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export interface EulerAncestralDiscreteSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: Exclude<BetaSchedule, 'sigmoid'>;
  trained_betas: number[] | null;
  prediction_type: 'epsilon' | 'v_prediction';
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
}

export const EULER_ANCESTRAL_DEFAULTS: Readonly<EulerAncestralDiscreteSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  prediction_type: 'epsilon',
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as EulerAncestralDiscreteSchedulerConfig);

const SPEC: ConfigSpec<EulerAncestralDiscreteSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 2, max: 1_000_000 },
  beta_start: { type: 'number', min: 0, max: 1 },
  beta_end: { type: 'number', min: 0, max: 1 },
  beta_schedule: { type: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
  trained_betas: { type: 'numbers', nullable: true },
  prediction_type: { type: 'enum', values: ['epsilon', 'v_prediction'], unsupported: ['sample'] },
  timestep_spacing: { type: 'enum', values: ['leading', 'trailing', 'linspace'] },
  steps_offset: { type: 'integer', min: 0 },
  rescale_betas_zero_snr: { type: 'boolean' },
};

export class EulerAncestralDiscreteScheduler implements Scheduler {
  readonly className = 'EulerAncestralDiscreteScheduler';
  readonly config: Readonly<EulerAncestralDiscreteSchedulerConfig>;
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  sigmas: Float64Array;
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config?: SchedulerConfigInput<EulerAncestralDiscreteSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('EulerAncestralDiscreteScheduler', EULER_ANCESTRAL_DEFAULTS, SPEC, config));
    let betas = makeBetas(this.config, ['linear', 'scaled_linear', 'squaredcos_cap_v2'], 'EulerAncestralDiscreteScheduler');
    if (this.config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    const ab = alphasCumprod(betas);
    if (this.config.rescale_betas_zero_snr) ab[ab.length - 1] = 2 ** -24;
    this.alphasCumprod = ab;
    const T = ab.length;
    this.sigmas = Float64Array.from([...Array.from(trainingSigmas(ab)).reverse(), 0]);
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get numTrainTimesteps(): number {
    return this.betas.length;
  }

  get initNoiseSigma(): number {
    let max = 0;
    for (const s of this.sigmas) max = Math.max(max, s);
    return this.config.timestep_spacing === 'leading' ? Math.sqrt(max * max + 1) : max;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const n = checkSteps(numInferenceSteps, this.numTrainTimesteps, this.className);
    this.numInferenceSteps = n;
    const timesteps = floatTimesteps(c.timestep_spacing, this.numTrainTimesteps, n, c.steps_offset);
    const train = trainingSigmas(this.alphasCumprod);
    this.sigmas = Float64Array.from([...timesteps.map((t) => Math.fround(interpOnIndex(t, train))), 0]);
    this.timesteps = timesteps;
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  private indexFor(t: number): number {
    if (this.stepIndex !== null) return this.stepIndex;
    if (this.beginIndex !== null) return (this.stepIndex = this.beginIndex);
    return (this.stepIndex = firstStepIndex(this.timesteps, t, this.className));
  }

  async scaleModelInput(sample: Tensor, t: number): Promise<Tensor> {
    const sigma = this.sigmas[this.indexFor(t)];
    return (await affineStep({ x: sample, bx: 1 / Math.sqrt(sigma * sigma + 1) })).out;
  }

  async step(modelOutput: Tensor, t: number, sample: Tensor, options: StepOptions = {}): Promise<SchedulerOutput> {
    const i = this.indexFor(t);
    if (i + 1 >= this.sigmas.length) throw new FusediffError('E_ARGUMENT', `${this.className}: stepped past the last timestep`);
    const sigma = this.sigmas[i];
    const sigmaTo = this.sigmas[i + 1];
    const sigmaUp = Math.sqrt((sigmaTo * sigmaTo * (sigma * sigma - sigmaTo * sigmaTo)) / (sigma * sigma));
    const sigmaDown = Math.sqrt(sigmaTo * sigmaTo - sigmaUp * sigmaUp);
    const [ax, am] =
      this.config.prediction_type === 'epsilon' ? [1, -sigma] : [1 / (sigma * sigma + 1), -sigma / Math.sqrt(sigma * sigma + 1)];
    const r = (sigmaDown - sigma) / sigma;
    const noise = sigmaUp > 0 ? stepNoise(options, sample.shape[0], () => new Generator()) : null;
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      noise,
      ax,
      am,
      bx: 1 + r,
      b0: -r,
      bz: sigmaUp > 0 ? sigmaUp : 0,
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    this.stepIndex = i + 1;
    return { prevSample: out, predOriginalSample: x0 };
  }

  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const sig = sigmasAt(this.timesteps, this.sigmas, t, original.shape[0], this.className);
    return (await affineStep({ x: original, m: noise, bx: 1, bm: sig })).out;
  }
}
