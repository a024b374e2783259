/**
 * DPMSolverMultistepScheduler — DPM-Solver++ of Lu, Zhou, Bao, Chen, Li & Zhu 2022,
 * "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion Probabilistic Models":
 * the first-order update (their eq. 8, = DDIM) and the second-order multistep update
 * (Algorithm 2, "2M"; midpoint or Heun variant), in the data-prediction form, with Karras σ
 * spacing as an option. Config keys, defaults and results are those of diffusers'
 * DPMSolverMultistepScheduler for algorithm_type "dpmsolver++", solver_order 1 or 2.
 *
 * With α_σ = 1/√(σ² + 1), s_σ = σ·α_σ, λ = ln α − ln s and h = λ_{i+1} − λ_i:
 *   D_i   = (x − s_i·m)/α_i (epsilon) | α_i·x − s_i·m (v_prediction) | m (sample)
 *   first  x' = (s_{i+1}/s_i)·x − α_{i+1}(e^{−h} − 1)·D_i
 *   2M     r = (λ_i − λ_{i−1})/h,  D1 = (D_i − D_{i−1})/r
 *          midpoint: x' = (s_{i+1}/s_i)·x − α_{i+1}(e^{−h} − 1)·(D_i + ½D1)
 *          heun:     x' = (s_{i+1}/s_i)·x − α_{i+1}(e^{−h} − 1)·D_i + α_{i+1}((e^{−h} − 1)/h + 1)·D1
 * A final σ = 0 gives x' = D_i. One fused kernel call per step (D_{i−1} is its fourth input).
 */
import { FusediffError } from '../errors.js';
import { alphasCumprod, linspaceF64, makeBetas, rescaleZeroTerminalSnr, type BetaSchedule } from '../schedules/betas.js';
import { interpOnIndex, karrasSigmas, sigmaToT, trainingSigmas } from '../schedules/karras.js';
import { numpyArange, roundHalfEven, type TimestepSpacing } from '../schedules/spacing.js';
import { affineStep } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import { firstStepIndex, sigmasAt } from './sigma_index.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export interface DPMSolverMultistepSchedulerConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: Exclude<BetaSchedule, 'sigmoid'>;
  trained_betas: number[] | null;
  solver_order: number;
  prediction_type: 'epsilon' | 'sample' | 'v_prediction';
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: 'dpmsolver++';
  solver_type: 'midpoint' | 'heun';
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_karras_sigmas: boolean;
  use_lu_lambdas: boolean;
  final_sigmas_type: 'zero' | 'sigma_min';
  lambda_min_clipped: number;
  /** 'learned' / 'learned_range': the model output has 2C channels, the first C are used; other values (DDPM's, from a shared config) mean none. */
  variance_type: string | null;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
}

export const DPM_DEFAULTS: Readonly<DPMSolverMultistepSchedulerConfig> = Object.freeze({
  num_train_timesteps: 1000,
  beta_start: 0.0001,
  beta_end: 0.02,
  beta_schedule: 'linear',
  trained_betas: null,
  solver_order: 2,
  prediction_type: 'epsilon',
  thresholding: false,
  dynamic_thresholding_ratio: 0.995,
  sample_max_value: 1.0,
  algorithm_type: 'dpmsolver++',
  solver_type: 'midpoint',
  lower_order_final: true,
  euler_at_final: false,
  use_karras_sigmas: false,
  use_lu_lambdas: false,
  final_sigmas_type: 'zero',
  lambda_min_clipped: -Infinity,
  variance_type: null,
  timestep_spacing: 'linspace',
  steps_offset: 0,
  rescale_betas_zero_snr: false,
} as DPMSolverMultistepSchedulerConfig);

const SPEC: ConfigSpec<DPMSolverMultistepSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 2, max: 1_000_000 },
  beta_start: { type: 'number', min: 0, max: 1 },
  beta_end: { type: 'number', min: 0, max: 1 },
  beta_schedule: { type: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'] },
  trained_betas: { type: 'numbers', nullable: true },
  solver_order: { type: 'integer', min: 1, max: 2 },
  prediction_type: { type: 'enum', values: ['epsilon', 'sample', 'v_prediction'] },
  thresholding: { type: 'boolean' },
  dynamic_thresholding_ratio: { type: 'number', min: 0, max: 1 },
  sample_max_value: { type: 'number', min: 1 },
  algorithm_type: { type: 'enum', values: ['dpmsolver++'], unsupported: ['dpmsolver', 'sde-dpmsolver', 'sde-dpmsolver++', 'deis'] },
  solver_type: { type: 'enum', values: ['midpoint', 'heun'] },
  lower_order_final: { type: 'boolean' },
  euler_at_final: { type: 'boolean' },
  use_karras_sigmas: { type: 'boolean' },
  use_lu_lambdas: { type: 'boolean' },
  final_sigmas_type: { type: 'enum', values: ['zero', 'sigma_min'] },
  lambda_min_clipped: { type: 'number', allowInfinite: true },
  variance_type: {
    type: 'enum',
    values: ['learned', 'learned_range', 'fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log'],
    nullable: true,
  },
  timestep_spacing: { type: 'enum', values: ['leading', 'trailing', 'linspace'] },
  steps_offset: { type: 'integer', min: 0 },
  rescale_betas_zero_snr: { type: 'boolean' },
};

/** α, s and λ of a σ (σ = 0: α = 1, s = 0, λ = +∞). */
function alphaSigma(sigma: number): { alpha: number; s: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, s, lambda: Math.log(alpha) - Math.log(s) };
}

export class DPMSolverMultistepScheduler implements Scheduler {
  readonly className = 'DPMSolverMultistepScheduler';
  readonly config: Readonly<DPMSolverMultistepSchedulerConfig>;
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  readonly initNoiseSigma = 1;
  /** D_{i−1} is kept between steps: predOriginalSample belongs to the scheduler. */
  readonly retainsPredOriginal = true;
  sigmas: Float64Array;
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;
  private lowerOrderNums = 0;
  private previous: Tensor | null = null;

  constructor(config?: SchedulerConfigInput<DPMSolverMultistepSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('DPMSolverMultistepScheduler', DPM_DEFAULTS, SPEC, config));
    if (this.config.use_lu_lambdas) throw new FusediffError('E_UNSUPPORTED', 'DPMSolverMultistepScheduler: use_lu_lambdas is not supported');
    let betas = makeBetas(this.config, ['linear', 'scaled_linear', 'squaredcos_cap_v2'], 'DPMSolverMultistepScheduler');
    if (this.config.rescale_betas_zero_snr) betas = rescaleZeroTerminalSnr(betas);
    this.betas = betas;
    const ab = alphasCumprod(betas);
    if (this.config.rescale_betas_zero_snr) ab[ab.length - 1] = 2 ** -24;
    this.alphasCumprod = ab;
    this.sigmas = trainingSigmas(ab);
    const T = ab.length;
    this.timesteps = Array.from({ length: T }, (_, i) => T - 1 - i);
  }

  get numTrainTimesteps(): number {
    return this.betas.length;
  }

  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    const T = this.numTrainTimesteps;
    const n = checkSteps(numInferenceSteps, T, this.className);
    const train = trainingSigmas(this.alphasCumprod);
    // λ_t = ln √ᾱ − ln √(1 − ᾱ): timesteps with λ below lambda_min_clipped are cut off.
    let clipped = 0;
    for (let k = T - 1; k >= 0; k--) {
      const a = this.alphasCumprod[k];
      const lam = Math.fround(Math.log(Math.fround(Math.sqrt(a)))) - Math.fround(Math.log(Math.fround(Math.sqrt(Math.fround(1 - a)))));
      if (lam < c.lambda_min_clipped) clipped++;
      else break;
    }
    const last = T - clipped;
    let timesteps: number[];
    if (c.timestep_spacing === 'linspace') {
      timesteps = Array.from(linspaceF64(0, last - 1, n + 1), roundHalfEven).reverse().slice(0, n);
    } else if (c.timestep_spacing === 'leading') {
      const ratio = Math.floor(last / (n + 1));
      timesteps = Array.from({ length: n + 1 }, (_, i) => (n - i) * ratio).slice(0, n).map((t) => t + c.steps_offset);
    } else {
      timesteps = Array.from(numpyArange(last, 0, -T / n), (v) => roundHalfEven(v) - 1);
    }
    let sigmas: Float64Array;
    if (c.use_karras_sigmas) {
      const logSigmas = train.map((v) => Math.fround(Math.log(v)));
      sigmas = karrasSigmas(timesteps.length, train[0], train[T - 1], 7);
      timesteps = Array.from(sigmas, (s) => roundHalfEven(sigmaToT(s, logSigmas)));
    } else {
      sigmas = Float64Array.from(timesteps, (t) => interpOnIndex(t, train));
    }
    const last_sigma = c.final_sigmas_type === 'zero' ? 0 : Math.sqrt((1 - this.alphasCumprod[0]) / this.alphasCumprod[0]);
    this.sigmas = Float64Array.from([...sigmas, last_sigma], Math.fround);
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
    this.stepIndex = null;
    this.beginIndex = null;
    this.lowerOrderNums = 0;
    this.reset();
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  /** Releases D_{i−1}. */
  reset(): void {
    this.previous?.dispose();
    this.previous = null;
    this.lowerOrderNums = 0;
  }

  private indexFor(t: number): number {
    if (this.stepIndex !== null) return this.stepIndex;
    if (this.beginIndex !== null) return (this.stepIndex = this.beginIndex);
    return (this.stepIndex = firstStepIndex(this.timesteps, t, this.className, this.timesteps.length - 1));
  }

  async scaleModelInput(sample: Tensor): Promise<Tensor> {
    return sample;
  }

  async step(modelOutput: Tensor, t: number, sample: Tensor, options: StepOptions = {}): Promise<SchedulerOutput> {
    if (this.numInferenceSteps === null) throw new FusediffError('E_ARGUMENT', `${this.className}: call setTimesteps(n) before step()`);
    const c = this.config;
    const i = this.indexFor(t);
    if (i + 1 >= this.sigmas.length) throw new FusediffError('E_ARGUMENT', `${this.className}: stepped past the last timestep`);
    const n = this.timesteps.length;
    const lowerOrderFinal = i === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === 'zero');
    const cur = alphaSigma(this.sigmas[i]);
    const next = alphaSigma(this.sigmas[i + 1]);
    // D_i = ax·x + am·m.
    let ax = 0, am = 1;
    if (c.prediction_type === 'epsilon') {
      if (modelOutput.shape[1] !== sample.shape[1] && c.variance_type !== 'learned' && c.variance_type !== 'learned_range')
        throw new FusediffError('E_SHAPE', `${this.className}: model output channels ${modelOutput.shape[1]} do not match the sample's`);
      ax = 1 / cur.alpha;
      am = -cur.s / cur.alpha;
    } else if (c.prediction_type === 'v_prediction') {
      ax = cur.alpha;
      am = -cur.s;
    }
    // The update: x' = bx·x + b0·D_i + by·D_{i−1}.
    let bx: number, b0: number, by = 0;
    const final = this.sigmas[i + 1] === 0;
    const h = next.lambda - cur.lambda;
    const A = final ? 1 : -next.alpha * Math.expm1(-h); // −α_{i+1}(e^{−h} − 1)
    bx = final ? 0 : next.s / cur.s;
    const firstOrder = c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal || this.previous === null;
    if (firstOrder) {
      b0 = A;
    } else {
      const prev = alphaSigma(this.sigmas[i - 1]);
      const r = (cur.lambda - prev.lambda) / h;
      // D1 = (D_i − D_{i−1})/r
      if (c.solver_type === 'midpoint') {
        b0 = A + (0.5 * A) / r;
        by = -(0.5 * A) / r;
      } else {
        const B = next.alpha * (Math.expm1(-h) / h + 1);
        b0 = A + B / r;
        by = -B / r;
      }
    }
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      y: by !== 0 ? this.previous : null,
      ax,
      am,
      threshold: c.thresholding ? { ratio: c.dynamic_thresholding_ratio, max: c.sample_max_value } : undefined,
      bx,
      b0,
      by,
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    this.previous?.dispose();
    this.previous = x0;
    if (this.lowerOrderNums < c.solver_order) this.lowerOrderNums++;
    this.stepIndex = i + 1;
    return { prevSample: out, predOriginalSample: x0 };
  }

  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const coefs = sigmasAt(this.timesteps, this.sigmas, t, original.shape[0], this.className).map(alphaSigma);
    return (await affineStep({ x: original, m: noise, bx: coefs.map((a) => a.alpha), bm: coefs.map((a) => a.s) })).out;
  }
}
