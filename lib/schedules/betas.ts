/**
 * β schedules and ᾱ (alphas_cumprod), computed the way diffusers computes them.
 *
 * diffusers builds these tables in float32 with PyTorch (torch.linspace, sigmoid, cumprod);
 * a model's timestep grid is defined by those float32 values, so the tables here are float32
 * values too (every intermediate rounded with Math.fround where PyTorch rounds to float32),
 * held in Float64Arrays so that the per-step coefficients derived from them are computed in
 * float64.
 *
 * References: Ho et al. 2020, "Denoising Diffusion Probabilistic Models" (linear β);
 * Rombach et al. 2022 (scaled_linear, "latent diffusion"); Nichol & Dhariwal 2021,
 * "Improved Denoising Diffusion Probabilistic Models" eq. 17 (squaredcos_cap_v2);
 * Xu et al. 2022, "GeoDiff" (sigmoid); Lin et al. 2024, "Common Diffusion Noise Schedules and
 * Sample Steps are Flawed", Algorithm 1 (zero terminal SNR).
 */
import { FusediffError } from '../errors.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2' | 'sigmoid';

const f32 = Math.fround;

/**
 * torch.linspace(start, end, steps, dtype=float32) as PyTorch's CPU kernel evaluates it:
 * the step is rounded to float32, the first half of the points is start + step·i, the second
 * half end − step·(steps − 1 − i), each product and sum rounded to float32.
 */
export function linspaceF32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps);
  if (steps === 1) {
    out[0] = f32(start);
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32((e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) {
    out[i] = i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - 1 - i)));
  }
  return out;
}

/** numpy.linspace(start, stop, num) in float64 (the last point is exactly `stop`). */
export function linspaceF64(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  if (num === 1) {
    out[0] = start;
    return out;
  }
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  out[num - 1] = stop;
  return out;
}

/**
 * Nichol & Dhariwal's cosine schedule: ᾱ(u) = cos²((u + 0.008)/1.008 · π/2) and
 * β_i = min(1 − ᾱ((i+1)/T)/ᾱ(i/T), max_beta), in float64, stored as float32.
 */
export function cosineBetas(numTrainTimesteps: number, maxBeta = 0.999): Float64Array {
  const alphaBar = (u: number): number => Math.cos(((u + 0.008) / 1.008) * Math.PI / 2) ** 2;
  const out = new Float64Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    out[i] = f32(Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta));
  }
  return out;
}

export interface BetaConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: readonly number[] | null;
}

/** The β table of a diffusers scheduler config (float32 values). */
export function makeBetas(config: BetaConfig, allowed: readonly BetaSchedule[], where: string): Float64Array {
  const T = config.num_train_timesteps;
  if (config.trained_betas !== null && config.trained_betas !== undefined) {
    const tb = config.trained_betas;
    if (!Array.isArray(tb) || tb.length === 0 || tb.some((b) => typeof b !== 'number' || !(b >= 0 && b < 1)))
      throw new FusediffError('E_CONFIG', `${where}: trained_betas must be a list of numbers in [0, 1)`);
    return Float64Array.from(tb, (b) => f32(b));
  }
  const schedule = config.beta_schedule as BetaSchedule;
  if (!allowed.includes(schedule))
    throw new FusediffError(
      'E_UNSUPPORTED',
      `${where}: beta_schedule "${config.beta_schedule}" is not supported here (use ${allowed.map((s) => `"${s}"`).join(', ')})`,
    );
  switch (schedule) {
    case 'linear':
      return linspaceF32(config.beta_start, config.beta_end, T);
    case 'scaled_linear': {
      const r = linspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T);
      return r.map((v) => f32(v * v));
    }
    case 'squaredcos_cap_v2':
      return cosineBetas(T);
    case 'sigmoid': {
      // β = sigmoid(v)·(beta_end − beta_start) + beta_start, v evenly spaced on [−6, 6] (float32).
      const v = linspaceF32(-6, 6, T);
      const range = f32(config.beta_end - config.beta_start);
      const start = f32(config.beta_start);
      return v.map((x) => f32(f32(f32(1 / (1 + Math.exp(-x))) * range) + start));
    }
  }
}

/** 1 − β in float32. */
export function alphasFromBetas(betas: Float64Array): Float64Array {
  return betas.map((b) => f32(1 - b));
}

/**
 * ᾱ_t = Π_{s≤t} α_s. PyTorch's CPU cumprod accumulates in float64 and rounds each partial
 * product to float32 on store; so does this.
 */
export function cumprod(alphas: Float64Array): Float64Array {
  const out = new Float64Array(alphas.length);
  let acc = 1;
  for (let i = 0; i < alphas.length; i++) {
    acc *= alphas[i];
    out[i] = f32(acc);
  }
  return out;
}

/**
 * Lin et al. 2024, Algorithm 1: shift and scale √ᾱ so that ᾱ_{T−1} = 0 while ᾱ_0 is kept,
 * then turn it back into β (all in float32 as diffusers does).
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const abar = cumprod(alphasFromBetas(betas));
  const sq = abar.map((a) => f32(Math.sqrt(a)));
  const a0 = sq[0];
  const aT = sq[sq.length - 1];
  const scale = f32(a0 / f32(a0 - aT));
  const shifted = sq.map((a) => f32(f32(a - aT) * scale));
  const abar2 = shifted.map((a) => f32(a * a));
  const out = new Float64Array(betas.length);
  for (let i = 0; i < betas.length; i++) {
    const alpha = i === 0 ? abar2[0] : f32(abar2[i] / abar2[i - 1]);
    out[i] = f32(1 - alpha);
  }
  return out;
}

/** ᾱ for a config: β (optionally rescaled to zero terminal SNR), α = 1 − β, cumulative product. */
export function alphasCumprod(betas: Float64Array): Float64Array {
  return cumprod(alphasFromBetas(betas));
}
