/**
 * The three SDEs of Song et al. 2021, "Score-Based Generative Modeling through Stochastic
 * Differential Equations" (§3.4 and Appendix B), on t ∈ [0, 1]:
 *
 *   VP      dx = −½β(t)·x dt + √β(t) dw,                      β(t) = β_min + t(β_max − β_min)
 *   sub-VP  dx = −½β(t)·x dt + √(β(t)(1 − e^{−2∫₀ᵗβ})) dw
 *   VE      dx = √(dσ²/dt) dw,                                σ(t) = σ_min·(σ_max/σ_min)^t
 *
 * Every drift is linear, f(x, t) = a(t)·x, so a step is an affine combination of tensors.
 * The marginals x_t | x_0 ~ N(m(t)·x_0, s(t)²) are exact:
 *   VP      m = e^{L},  s² = 1 − e^{2L},        L(t) = −¼t²(β_max − β_min) − ½tβ_min   (eq. 29)
 *   sub-VP  m = e^{L},  s  = 1 − e^{2L}                                               (eq. 30)
 *   VE      m = 1,      s² = σ(t)² − σ_min²    (Song et al. write σ(t)², dropping σ_min²)
 */
import { FusediffError } from '../errors.js';

export interface Sde {
  readonly kind: 'vp' | 'subvp' | 've';
  /** a(t) in f(x, t) = a(t)·x. */
  driftCoef(t: number): number;
  /** g(t)². */
  diffusionSquared(t: number): number;
  /** Mean coefficient m(t) and standard deviation s(t) of x_t given x_0. */
  marginal(t: number): { mean: number; std: number };
  /** Standard deviation of the prior the reverse process starts from (at t = 1, zero-mean). */
  readonly priorStd: number;
}

function checkPositive(v: number, what: string): number {
  if (typeof v !== 'number' || !(v > 0) || !Number.isFinite(v)) throw new FusediffError('E_CONFIG', `${what} must be a positive number, got ${v}`);
  return v;
}

/** The variance-preserving SDE (the continuous limit of DDPM). */
export class VPSDE implements Sde {
  readonly kind: 'vp' | 'subvp' = 'vp';
  readonly betaMin: number;
  readonly betaMax: number;
  constructor(options: { betaMin?: number; betaMax?: number } = {}) {
    this.betaMin = checkPositive(options.betaMin ?? 0.1, 'betaMin');
    this.betaMax = checkPositive(options.betaMax ?? 20, 'betaMax');
    if (this.betaMax < this.betaMin) throw new FusediffError('E_CONFIG', 'betaMax must be >= betaMin');
  }
  beta(t: number): number {
    return this.betaMin + t * (this.betaMax - this.betaMin);
  }
  /** L(t) = ln m(t) = −½∫₀ᵗβ. */
  logMean(t: number): number {
    return -0.25 * t * t * (this.betaMax - this.betaMin) - 0.5 * t * this.betaMin;
  }
  driftCoef(t: number): number {
    return -0.5 * this.beta(t);
  }
  diffusionSquared(t: number): number {
    return this.beta(t);
  }
  marginal(t: number): { mean: number; std: number } {
    const L = this.logMean(t);
    return { mean: Math.exp(L), std: Math.sqrt(-Math.expm1(2 * L)) };
  }
  get priorStd(): number {
    return 1;
  }
}

/** The sub-VP SDE: the VP drift with a smaller diffusion; its marginal variance is below VP's. */
export class SubVPSDE extends VPSDE {
  override readonly kind = 'subvp' as const;
  override diffusionSquared(t: number): number {
    return this.beta(t) * -Math.expm1(4 * this.logMean(t));
  }
  override marginal(t: number): { mean: number; std: number } {
    const L = this.logMean(t);
    return { mean: Math.exp(L), std: -Math.expm1(2 * L) };
  }
}

/** The variance-exploding SDE (the continuous limit of SMLD / NCSN). */
export class VESDE implements Sde {
  readonly kind = 've' as const;
  readonly sigmaMin: number;
  readonly sigmaMax: number;
  constructor(options: { sigmaMin?: number; sigmaMax?: number } = {}) {
    this.sigmaMin = checkPositive(options.sigmaMin ?? 0.01, 'sigmaMin');
    this.sigmaMax = checkPositive(options.sigmaMax ?? 50, 'sigmaMax');
    if (this.sigmaMax <= this.sigmaMin) throw new FusediffError('E_CONFIG', 'sigmaMax must be > sigmaMin');
  }
  sigma(t: number): number {
    return this.sigmaMin * (this.sigmaMax / this.sigmaMin) ** t;
  }
  driftCoef(): number {
    return 0;
  }
  diffusionSquared(t: number): number {
    const s = this.sigma(t);
    return 2 * s * s * Math.log(this.sigmaMax / this.sigmaMin);
  }
  marginal(t: number): { mean: number; std: number } {
    const s = this.sigma(t);
    return { mean: 1, std: Math.sqrt(Math.max(s * s - this.sigmaMin * this.sigmaMin, 0)) };
  }
  get priorStd(): number {
    return Math.sqrt(this.sigmaMax ** 2 - this.sigmaMin ** 2);
  }
}
