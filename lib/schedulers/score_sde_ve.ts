/**
 * ScoreSdeVeScheduler — predictor–corrector sampling of the variance-exploding SDE, Song et
 * al. 2021, "Score-Based Generative Modeling through SDEs", Algorithm 2 (PC sampling, VE),
 * with the reverse-diffusion predictor (their eq. 46 for the SMLD discretisation) and the
 * annealed Langevin corrector (Algorithm 4). The model outputs the score ∇ₓ log p_σ(x).
 * Config keys, defaults and results are those of diffusers' ScoreSdeVeScheduler.
 *
 *   timesteps   t_i evenly spaced from 1 to sampling_eps (float32); the model gets σ_i = σ_min(σ_max/σ_min)^{t_i}
 *   predictor   k = ⌊t·(n − 1)⌋, σ = σ̃_k, σ_prev = σ̃_{k−1} (0 for k = 0), σ̃ = geometric grid of n σs
 *               mean = x + (σ² − σ_prev²)·m;   x' = mean + √(σ² − σ_prev²)·z
 *   corrector   ε = 2(snr·‖z‖/‖m‖)² with batch-mean norms;   x' = x + ε·m + √(2ε)·z
 * Each is one fused kernel call.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { linspaceF32 } from '../schedules/betas.js';
import { affineStep, langevinStep, stepNoise } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, timestepList, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import type { StepOptions } from './types.js';

export interface ScoreSdeVeSchedulerConfig {
  num_train_timesteps: number;
  snr: number;
  sigma_min: number;
  sigma_max: number;
  sampling_eps: number;
  correct_steps: number;
}

export const SDE_VE_DEFAULTS: Readonly<ScoreSdeVeSchedulerConfig> = Object.freeze({
  num_train_timesteps: 2000,
  snr: 0.15,
  sigma_min: 0.01,
  sigma_max: 1348.0,
  sampling_eps: 1e-5,
  correct_steps: 1,
});

const SPEC: ConfigSpec<ScoreSdeVeSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 2, max: 1_000_000 },
  snr: { type: 'number', min: 0 },
  sigma_min: { type: 'number', positive: true },
  sigma_max: { type: 'number', positive: true },
  sampling_eps: { type: 'number', positive: true, max: 1 },
  correct_steps: { type: 'integer', min: 0 },
};

export interface SdeVeOutput {
  prevSample: Tensor;
  prevSampleMean: Tensor;
}

export class ScoreSdeVeScheduler {
  readonly className = 'ScoreSdeVeScheduler';
  readonly config: Readonly<ScoreSdeVeSchedulerConfig>;
  /** t_i from 1 to sampling_eps (float32 values). */
  timesteps: number[] = [];
  /** σ_i = σ_min(σ_max/σ_min)^{t_i}: what the model is given. */
  sigmas: Float64Array = new Float64Array(0);
  /** σ̃_k, the geometric grid from σ_min to σ_max the steps use. */
  discreteSigmas: Float64Array = new Float64Array(0);

  constructor(config?: SchedulerConfigInput<ScoreSdeVeSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('ScoreSdeVeScheduler', SDE_VE_DEFAULTS, SPEC, config));
    if (!(this.config.sigma_max > this.config.sigma_min)) throw new FusediffError('E_CONFIG', 'ScoreSdeVeScheduler: sigma_max must be larger than sigma_min');
    this.setTimesteps(this.config.num_train_timesteps);
  }

  get initNoiseSigma(): number {
    return this.config.sigma_max;
  }

  /** n continuous timesteps and their σs (diffusers' set_timesteps followed by set_sigmas). */
  setTimesteps(numInferenceSteps: number, samplingEps = this.config.sampling_eps): void {
    const n = checkSteps(numInferenceSteps, Number.MAX_SAFE_INTEGER, this.className);
    this.timesteps = Array.from(linspaceF32(1, samplingEps, n));
    this.setSigmas(n);
  }

  /** The σ tables for n steps (keeps the current timesteps). */
  setSigmas(numInferenceSteps: number): void {
    const { sigma_min: smin, sigma_max: smax } = this.config;
    const f32 = Math.fround;
    this.sigmas = Float64Array.from(this.timesteps, (t) => f32(smin * (smax / smin) ** t));
    this.discreteSigmas = Float64Array.from(linspaceF32(Math.log(smin), Math.log(smax), numInferenceSteps), (v) => f32(Math.exp(v)));
  }

  /** The grid index k = ⌊t·(n − 1)⌋ (float32 product, as diffusers) of a timestep. */
  sigmaIndex(t: number): number {
    const k = Math.trunc(Math.fround(Math.fround(t) * (this.timesteps.length - 1)));
    if (!(k >= 0 && k < this.discreteSigmas.length)) throw new FusediffError('E_ARGUMENT', `ScoreSdeVeScheduler: timestep ${t} is outside [0, 1]`);
    return k;
  }

  /** The predictor: one reverse-diffusion step from t (one timestep or one per image). */
  async stepPred(modelOutput: Tensor, t: number | readonly number[], sample: Tensor, options: StepOptions = {}): Promise<SdeVeOutput> {
    const ts = timestepList(t, sample.shape[0]);
    const g2 = ts.map((v) => {
      const k = this.sigmaIndex(v);
      const sigma = this.discreteSigmas[k];
      const adjacent = k > 0 ? this.discreteSigmas[k - 1] : 0;
      return sigma * sigma - adjacent * adjacent;
    });
    const noise = stepNoise(options, sample.shape[0], () => new Generator());
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      noise,
      ax: 1,
      am: g2,
      b0: 1,
      bz: g2.map(Math.sqrt),
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    return { prevSample: out, prevSampleMean: x0! };
  }

  /** The corrector: one annealed Langevin step with the config's snr (batch-mean norms, as diffusers). */
  async stepCorrect(modelOutput: Tensor, sample: Tensor, options: StepOptions & { batchMean?: boolean } = {}): Promise<{ prevSample: Tensor }> {
    const noise = stepNoise(options, sample.shape[0], () => new Generator());
    const { out } = await langevinStep({
      x: sample,
      m: modelOutput,
      noise,
      scoreScale: 1,
      snr: this.config.snr,
      batchMean: options.batchMean ?? true,
      guidanceScale: options.guidanceScale,
    });
    return { prevSample: out };
  }

  /** x + σ̃_k·noise for integer grid indices k (diffusers' add_noise). */
  async addNoise(original: Tensor, noise: Tensor, k: number | readonly number[]): Promise<Tensor> {
    const ks = timestepList(k, original.shape[0], 'sigma index');
    const sig = ks.map((v) => {
      if (!Number.isInteger(v) || v < 0 || v >= this.discreteSigmas.length)
        throw new FusediffError('E_ARGUMENT', `ScoreSdeVeScheduler: sigma index ${v} is out of range`);
      return this.discreteSigmas[v];
    });
    return (await affineStep({ x: original, m: noise, bx: 1, bm: sig })).out;
  }
}
