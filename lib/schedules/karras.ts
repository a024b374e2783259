/**
 * Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative Models",
 * eq. 5: σ_i = (σ_max^{1/ρ} + u_i·(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for a ramp u ∈ [0, 1]; and the
 * σ ↔ t maps of a discrete VP schedule (σ_t = √((1 − ᾱ_t)/ᾱ_t)) that diffusers uses with it.
 */
import { linspaceF64 } from './betas.js';

/** Karras sigmas for the ramp values `ramp` (u = 0 gives σ_max). */
export function karrasSigmasForRamp(ramp: ArrayLike<number>, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return Float64Array.from(ramp, (u) => (maxInv + u * (minInv - maxInv)) ** rho);
}

/** n Karras sigmas from σ_max down to σ_min (u = k/(n−1)). */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7): Float64Array {
  return karrasSigmasForRamp(linspaceF64(0, 1, n), sigmaMin, sigmaMax, rho);
}

/** σ_t = √((1 − ᾱ_t)/ᾱ_t) of each training timestep, in float32 as diffusers computes it. */
export function trainingSigmas(alphasCumprod: Float64Array): Float64Array {
  const f32 = Math.fround;
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy.interp(x, [0, 1, …, len−1], fp): linear interpolation on the integer grid. */
export function interpOnIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  if (j === x) return fp[j];
  const slope = fp[j + 1] - fp[j];
  return slope * (x - j) + fp[j];
}

/**
 * The fractional timestep of a sigma: piecewise-linear interpolation of the index in ln σ_t
 * (`logSigmas` increasing): the last j (at most len − 2) with ln σ_j ≤ ln σ, then
 * w = clamp((ln σ_j − ln σ)/(ln σ_j − ln σ_{j+1}), 0, 1) and t = (1 − w)·j + w·(j + 1).
 */
export function sigmaToT(sigma: number, logSigmas: ArrayLike<number>): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let count = 0;
  for (let j = 0; j < logSigmas.length; j++) if (logSigma - logSigmas[j] >= 0) count++;
  // numpy: cumsum(dists >= 0).argmax() = the first index where the running count reaches its maximum.
  let low = 0;
  let running = 0;
  for (let j = 0; j < logSigmas.length; j++) {
    if (logSigma - logSigmas[j] >= 0) running++;
    if (running === count) {
      low = j;
      break;
    }
  }
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low];
  const hi = logSigmas[low + 1];
  const w = Math.min(Math.max((lo - logSigma) / (lo - hi), 0), 1);
  return (1 - w) * low + w * (low + 1);
}
