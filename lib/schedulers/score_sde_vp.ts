/**
 * ScoreSdeVpScheduler — Euler–Maruyama for the reverse-time variance-preserving SDE, Song et
 * al. 2021, eq. 6 with the VP SDE of eq. 11 (β(t) = β_min + t(β_max − β_min)); the model is a
 * noise predictor, turned into a score by −m/std(t) with the VP marginal std of eq. 29. Config
 * keys, defaults and results are those of diffusers' (deprecated) ScoreSdeVpScheduler.
 *
 *   L = −¼t²(β_max − β_min) − ½tβ_min;  std = √(1 − e^{2L});  score = −m/std
 *   dt = −1/n;  mean = x + (−½β(t)·x − β(t)·score)·dt;  x' = mean + √β(t)·√(−dt)·z
 * One fused kernel call per step.
 */
import { Generator } from '../random.js';
import { linspaceF32 } from '../schedules/betas.js';
import { affineStep, stepNoise } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkSteps, parseSchedulerConfig, timestepList, type ConfigSpec, type SchedulerConfigInput } from './config.js';
import type { StepOptions } from './types.js';

export interface ScoreSdeVpSchedulerConfig {
  num_train_timesteps: number;
  beta_min: number;
  beta_max: number;
  sampling_eps: number;
}

export const SDE_VP_DEFAULTS: Readonly<ScoreSdeVpSchedulerConfig> = Object.freeze({
  num_train_timesteps: 2000,
  beta_min: 0.1,
  beta_max: 20,
  sampling_eps: 1e-3,
});

const SPEC: ConfigSpec<ScoreSdeVpSchedulerConfig> = {
  num_train_timesteps: { type: 'integer', min: 1, max: 1_000_000 },
  beta_min: { type: 'number', positive: true },
  beta_max: { type: 'number', positive: true },
  sampling_eps: { type: 'number', positive: true, max: 1 },
};

export class ScoreSdeVpScheduler {
  readonly className = 'ScoreSdeVpScheduler';
  readonly config: Readonly<ScoreSdeVpSchedulerConfig>;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];

  constructor(config?: SchedulerConfigInput<ScoreSdeVpSchedulerConfig>) {
    this.config = Object.freeze(parseSchedulerConfig('ScoreSdeVpScheduler', SDE_VP_DEFAULTS, SPEC, config));
  }

  setTimesteps(numInferenceSteps: number): void {
    const n = checkSteps(numInferenceSteps, Number.MAX_SAFE_INTEGER, this.className);
    this.timesteps = Array.from(linspaceF32(1, this.config.sampling_eps, n));
  }

  /** The fused kernel's coefficients at time t (per image). */
  stepCoefficients(t: number): { bx: number; bm: number; bz: number } {
    const { beta_min: bmin, beta_max: bmax } = this.config;
    const L = -0.25 * t * t * (bmax - bmin) - 0.5 * t * bmin;
    const std = Math.sqrt(-Math.expm1(2 * L));
    const dt = -1 / this.timesteps.length;
    const beta = bmin + t * (bmax - bmin);
    return { bx: 1 - 0.5 * beta * dt, bm: (beta * dt) / std, bz: Math.sqrt(beta) * Math.sqrt(-dt) };
  }

  /** One Euler–Maruyama step of the reverse SDE at time t (one value or one per image). */
  async stepPred(modelOutput: Tensor, sample: Tensor, t: number | readonly number[], options: StepOptions = {}): Promise<{ prevSample: Tensor; prevSampleMean: Tensor }> {
    if (this.timesteps.length === 0) this.setTimesteps(this.config.num_train_timesteps);
    const c = timestepList(t, sample.shape[0]).map((v) => this.stepCoefficients(v));
    const noise = stepNoise(options, sample.shape[0], () => new Generator());
    const { out, x0 } = await affineStep({
      x: sample,
      m: modelOutput,
      noise,
      ax: c.map((v) => v.bx),
      am: c.map((v) => v.bm),
      b0: 1,
      bz: c.map((v) => v.bz),
      guidanceScale: options.guidanceScale,
      wantX0: true,
    });
    return { prevSample: out, prevSampleMean: x0! };
  }
}
