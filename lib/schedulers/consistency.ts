/**
 * CMStochasticIterativeScheduler — multistep consistency sampling, Song, Dhariwal, Chen &
 * Sutskever 2023, "Consistency Models", Algorithm 1, with the parameterisation of their
 * Appendix C and the Karras et al. 2022 σ grid. Config keys, defaults and results are those
 * of diffusers' CMStochasticIterativeScheduler.
 *
 *   σ grid     σ(u) = (σ_max^{1/ρ} + u(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ with u_i = list[n−1−i]/(N−1),
 *              list = k·⌊N/n⌋ (k = n−1 … 0) or explicit timesteps; model time t_i = 250·ln(σ_i)
 *   input      x / √(σ² + σ_data²)
 *   denoise    f(x, σ) = c_skip(σ)·x + c_out(σ)·F,   c_skip = σ_data²/((σ − σ_min)² + σ_data²),
 *              c_out = (σ − σ_min)·σ_data/√(σ² + σ_data²)         (so f(x, σ_min) = x)
 *   re-noise   x_next = f + s_noise·√(σ̂² − σ_min²)·z,  σ̂ = clamp(σ_next, σ_min, σ_max)   (Algorithm 1)
 * One step is one fused kernel call; a single-step schedule adds no noise.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { linspaceF64 } from '../schedules/betas.js';
import { karrasSigmasForRamp } from '../schedules/karras.js';
import { affineStep, stepNoise } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import { firstStepIndex, sigmasAt } from './sigma_index.js';
import type { Scheduler, SchedulerOutput, StepOptions } from './types.js';

export interface CMStochasticIterativeSchedulerConfig {
  num_train_timesteps: number;
  sigma_min: number;
  sigma_max: number;
  sigma_data: number;
  s_noise: number;
  rho: number;
  clip_denoised: boolean;
}

export const CM_DEFAULTS: Readonly<CMStochasticIterativeSchedulerConfig> = Object.freeze({
  num_train_timesteps: 40,
  sigma_min: 0.002,
  sigma_max: 80.0,
  sigma_data: 0.5,
  s_noise: 1.0,
  rho: 7.0,
  clip_denoised: true,
});

const SPEC: ConfigSpec<CMStochasticIterativeSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 2, max: 1_000_000 },
  sigma_min: { type: 'number', positive: true },
  sigma_max: { type: 'number', positive: true },
  sigma_data: { type: 'number', positive: true },
  s_noise: { type: 'number', min: 0 },
  rho: { type: 'number', positive: true },
  clip_denoised: { type: 'boolean' },
};

export class CMStochasticIterativeScheduler implements Scheduler {
  readonly className = 'CMStochasticIterativeScheduler';
  readonly config: Readonly<CMStochasticIterativeSchedulerConfig>;
  /** σ_i of the schedule then σ_min (float32 values, as diffusers' table). */
  sigmas: Float64Array;
  /** Model times 250·ln σ_i (float64). */
  timesteps: number[];
  numInferenceSteps: number | null = null;
  private stepIndex: number | null = null;
  private beginIndex: number | null = null;

  constructor(config?: SchedulerConfigInput<CMStochasticIterativeSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('CMStochasticIterativeScheduler', CM_DEFAULTS, SPEC, config));
    if (!(this.config.sigma_max > this.config.sigma_min))
      throw new FusediffError('E_CONFIG', 'CMStochasticIterativeScheduler: sigma_max must be larger than sigma_min');
    const sigmas = this.karras(linspaceF64(0, 1, this.config.num_train_timesteps));
    this.sigmas = sigmas;
    this.timesteps = Array.from(sigmas, (s) => this.sigmaToT(s));
  }

  get initNoiseSigma(): number {
    return this.config.sigma_max;
  }

  private karras(ramp: ArrayLike<number>): Float64Array {
    return karrasSigmasForRamp(ramp, this.config.sigma_min, this.config.sigma_max, this.config.rho);
  }

  /** The model's time input for σ: 1000·0.25·ln(σ + 1e-44). */
  sigmaToT(sigma: number): number {
    return 1000 * 0.25 * Math.log(sigma + 1e-44);
  }

  /**
   * `n` steps (timesteps k·⌊N/n⌋, k = n−1 … 0), or an explicit descending list of integer
   * timesteps below num_train_timesteps, e.g. `{ timesteps: [22, 0] }`.
   */
  setTimesteps(steps: number | { timesteps: readonly number[] }): void {
    const N = this.config.num_train_timesteps;
    let list: number[];
    if (typeof steps === 'object' && steps !== null) {
      list = [...steps.timesteps];
      if (list.length === 0) throw new FusediffError('E_ARGUMENT', 'CMStochasticIterativeScheduler: timesteps must not be empty');
      list.forEach((t, i) => {
        if (!Number.isInteger(t) || t < 0 || t >= N)
          throw new FusediffError('E_ARGUMENT', `CMStochasticIterativeScheduler: timestep ${t} must be an integer in [0, ${N})`);
        if (i > 0 && t >= list[i - 1])
          throw new FusediffError('E_ARGUMENT', 'CMStochasticIterativeScheduler: timesteps must be in descending order');
      });
      this.numInferenceSteps = null;
    } else {
      const n = checkSteps(steps, N, 'CMStochasticIterativeScheduler');
      const ratio = Math.floor(N / n);
      list = Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio);
      this.numInferenceSteps = n;
    }
    const ramp = list.slice().reverse().map((t) => t / (N - 1));
    const sigmas = this.karras(ramp);
    this.timesteps = Array.from(sigmas, (s) => this.sigmaToT(s));
    this.sigmas = Float64Array.from([...sigmas, this.config.sigma_min], Math.fround);
    this.stepIndex = null;
    this.beginIndex = null;
  }

  setBeginIndex(index: number): void {
    this.beginIndex = index;
  }

  private indexFor(t: number): number {
    if (this.stepIndex !== null) return this.stepIndex;
    if (this.beginIndex !== null) return (this.stepIndex = this.beginIndex);
    return (this.stepIndex = firstStepIndex(this.timesteps, t, 'CMStochasticIterativeScheduler'));
  }

  /** x / √(σ_i² + σ_data²) for the current step's σ_i. */
  async scaleModelInput(sample: Tensor, t: number): Promise<Tensor> {
    const sigma = this.sigmas[this.indexFor(t)];
    return (await affineStep({ x: sample, bx: 1 / Math.sqrt(sigma * sigma + this.config.sigma_data ** 2) })).out;
  }

  /** Appendix C's c_skip and c_out with ε = σ_min. */
  scalingsForBoundaryCondition(sigma: number): { cSkip: number; cOut: number } {
    const { sigma_min: smin, sigma_data: sd } = this.config;
    return {
      cSkip: (sd * sd) / ((sigma - smin) ** 2 + sd * sd),
      cOut: ((sigma - smin) * sd) / Math.sqrt(sigma * sigma + sd * sd),
    };
  }

  async step(modelOutput: Tensor, t: number, sample: Tensor, options: StepOptions = {}): Promise<SchedulerOutput> {
    const { sigma_min: smin, sigma_max: smax } = this.config;
    const i = this.indexFor(t);
    const sigma = this.sigmas[i];
    const sigmaNext = i + 1 < this.config.num_train_timesteps ? this.sigmas[i + 1] : this.sigmas[this.sigmas.length - 1];
    if (sigmaNext === undefined) throw new FusediffError('E_ARGUMENT', 'CMStochasticIterativeScheduler: stepped past the last timestep');
    const { cSkip, cOut } = this.scalingsForBoundaryCondition(sigma);
    const sigmaHat = Math.min(Math.max(sigmaNext, smin), smax);
    const multistep = this.timesteps.length > 1;
    const noise = multistep ? stepNoise(options, sample.shape[0], () => new Generator()) : null;
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      noise,
      ax: cSkip,
      am: cOut,
      clamp: this.config.clip_denoised ? [-1, 1] : undefined,
      b0: 1,
      bz: multistep ? this.config.s_noise * Math.sqrt(sigmaHat * sigmaHat - smin * smin) : 0,
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    this.stepIndex = i + 1;
    return { prevSample: out, predOriginalSample: x0 };
  }

  /** x + σ_t·noise, σ_t the σ of the schedule at timestep t (per image). */
  async addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor> {
    const sig = sigmasAt(this.timesteps, this.sigmas, t, original.shape[0], 'CMStochasticIterativeScheduler');
    return (await affineStep({ x: original, m: noise, bx: 1, bm: sig })).out;
  }
}
