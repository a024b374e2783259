/**
 * Timestep spacing: which of the T training timesteps an n-step sampler visits
 * (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps are Flawed", Table 2:
 * `leading`, `trailing`, `linspace`), computed exactly as diffusers does with numpy, including
 * numpy's round-half-to-even and its float arange.
 */
import { FusediffError } from '../errors.js';
import { linspaceF64 } from './betas.js';

export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/** numpy.round / Python's round: to the nearest integer, ties to the even one (0.5 → 0, 1.5 → 2). */
export function roundHalfEven(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * numpy.arange(start, stop, step) for floats: length ceil((stop − start)/step); the values
 * are start + i·δ with δ = (start + step) − start, as numpy's fill computes them.
 */
export function numpyArange(start: number, stop: number, step: number): Float64Array {
  const len = Math.max(0, Math.ceil((stop - start) / step));
  const out = new Float64Array(len);
  if (len > 0) out[0] = start;
  if (len > 1) {
    out[1] = start + step;
    const delta = out[1] - start;
    for (let i = 2; i < len; i++) out[i] = start + i * delta;
  }
  return out;
}

export function checkSpacing(spacing: string, where: string): TimestepSpacing {
  if (spacing !== 'leading' && spacing !== 'trailing' && spacing !== 'linspace')
    throw new FusediffError('E_CONFIG', `${where}: timestep_spacing must be "leading", "trailing" or "linspace", got "${spacing}"`);
  return spacing;
}

/**
 * Descending integer timesteps of the DDPM/DDIM schedulers:
 *   leading   k·floor(T/n) + steps_offset, k = n−1 … 0
 *   trailing  round(T − k·T/n) − 1 from numpy's float arange (may be one longer for some n)
 *   linspace  round(k·(T−1)/(n−1)), k = n−1 … 0
 */
export function integerTimesteps(spacing: TimestepSpacing, T: number, n: number, stepsOffset: number): number[] {
  switch (spacing) {
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => (n - 1 - i) * ratio + stepsOffset);
    }
    case 'trailing':
      return Array.from(numpyArange(T, 0, -T / n), (v) => roundHalfEven(v) - 1);
    case 'linspace':
      return Array.from(linspaceF64(0, T - 1, n), roundHalfEven).reverse();
  }
}

/**
 * Float timesteps of the σ-based schedulers (Euler, Euler-ancestral): linspace (float32, not
 * rounded), leading (k·⌊T/n⌋ + steps_offset) or trailing (round(T − k·T/n) − 1).
 */
export function floatTimesteps(spacing: TimestepSpacing, T: number, n: number, stepsOffset: number): number[] {
  const f32 = Math.fround;
  switch (spacing) {
    case 'linspace':
      return Array.from(linspaceF64(0, T - 1, n), f32).reverse();
    case 'leading': {
      const ratio = Math.floor(T / n);
      return Array.from({ length: n }, (_, i) => f32((n - 1 - i) * ratio) + stepsOffset);
    }
    case 'trailing':
      return Array.from(numpyArange(T, 0, -T / n), (v) => f32(roundHalfEven(v)) - 1);
  }
}

