/**
 * Analytic models: data whose exact denoiser is known in closed form, plugged into the
 * samplers in place of a network.
 *
 * Gaussian data x_0 ~ N(μ_c, s²) independently per element (μ_c per channel). If
 * x_t = a·x_0 + b·z then x_t ~ N(a·μ, a²s² + b²) and
 *     E[z | x_t] = b·(x_t − a·μ)/(a²s² + b²),   score = −(x_t − a·μ)/(a²s² + b²).
 * These are affine in (x_t, μ), so the model is one fused native kernel call on native
 * tensors, like the sampler itself.
 *
 * A mixture of two Gaussians Σ_k π_k N(μ_k, s_k²) per element has
 *     E[z | x_t] = Σ_k r_k(x_t)·b·(x_t − a·μ_k)/(a²s_k² + b²),   r_k ∝ π_k N(x_t; a·μ_k, a²s_k² + b²)
 * which is evaluated elementwise in JS (the model reads its input like any remote model would).
 */
import { affineStep, Tensor } from '../../lib/index.js';

export interface Gaussian {
  /** Mean per channel. */
  mu: number[];
  s: number;
}

/** A [B, C, H, W] tensor holding μ_c in channel c. */
export function meanTensor(shape: number[], mu: number[]): Tensor {
  const [B, C, H, W] = shape;
  const data = new Float32Array(B * C * H * W);
  for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) data.fill(mu[c], (b * C + c) * H * W, (b * C + c + 1) * H * W);
  return Tensor.fromFloat32(data, shape);
}

/** ε-prediction model of Gaussian data for x_t = a(t)·x_0 + b(t)·z (t per image). */
export function gaussianEps(g: Gaussian, shape: number[], coefs: (t: number) => { a: number; b: number }) {
  const mu = meanTensor(shape, g.mu);
  const fn = async (x: Tensor, t: number[]): Promise<Tensor> => {
    const ab = t.map(coefs);
    const v = ab.map(({ a, b }) => a * a * g.s * g.s + b * b);
    return (await affineStep({ x, m: mu, bx: ab.map(({ b }, i) => b / v[i]), bm: ab.map(({ a, b }, i) => (-b * a) / v[i]) })).out;
  };
  return { fn, dispose: () => mu.dispose() };
}

/** Score model of Gaussian data for x_t = a(t)·x_0 + b(t)·z. */
export function gaussianScore(g: Gaussian, shape: number[], coefs: (t: number) => { a: number; b: number }) {
  const mu = meanTensor(shape, g.mu);
  const fn = async (x: Tensor, t: number[]): Promise<Tensor> => {
    const ab = t.map(coefs);
    const v = ab.map(({ a, b }) => a * a * g.s * g.s + b * b);
    return (await affineStep({ x, m: mu, bx: v.map((vi) => -1 / vi), bm: ab.map(({ a }, i) => a / v[i]) })).out;
  };
  return { fn, dispose: () => mu.dispose() };
}

export interface Mixture {
  weights: [number, number];
  mu: [number, number];
  s: [number, number];
}

export function mixtureMoments(m: Mixture): { mean: number; variance: number } {
  const mean = m.weights[0] * m.mu[0] + m.weights[1] * m.mu[1];
  const second = m.weights[0] * (m.s[0] ** 2 + m.mu[0] ** 2) + m.weights[1] * (m.s[1] ** 2 + m.mu[1] ** 2);
  return { mean, variance: second - mean * mean };
}

/** ε-prediction model of the mixture for x_t = a(t)·x_0 + b(t)·z, evaluated in JS. */
export function mixtureEps(m: Mixture, coefs: (t: number) => { a: number; b: number }) {
  return async (x: Tensor, t: number[]): Promise<Tensor> => {
    const data = await x.toFloat32Array();
    const [B] = x.shape;
    const per = data.length / B;
    const out = new Float32Array(data.length);
    for (let i = 0; i < B; i++) {
      const { a, b } = coefs(t[i]);
      const v0 = a * a * m.s[0] ** 2 + b * b;
      const v1 = a * a * m.s[1] ** 2 + b * b;
      const c0 = Math.log(m.weights[0]) - 0.5 * Math.log(v0);
      const c1 = Math.log(m.weights[1]) - 0.5 * Math.log(v1);
      for (let j = i * per; j < (i + 1) * per; j++) {
        const d0 = data[j] - a * m.mu[0];
        const d1 = data[j] - a * m.mu[1];
        const l0 = c0 - (0.5 * d0 * d0) / v0;
        const l1 = c1 - (0.5 * d1 * d1) / v1;
        const r0 = 1 / (1 + Math.exp(l1 - l0));
        out[j] = b * (r0 * (d0 / v0) + (1 - r0) * (d1 / v1));
      }
    }
    return Tensor.fromFloat32(out, x.shape);
  };
}

export interface Moments {
  n: number;
  mean: number;
  variance: number;
}

/** Sample mean and variance of channel c (all images and pixels), or of everything. */
export function moments(data: Float32Array, shape: number[], channel?: number): Moments {
  const [B, C, H, W] = shape;
  const hw = H * W;
  let n = 0, s1 = 0, s2 = 0;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++) {
      if (channel !== undefined && c !== channel) continue;
      for (let k = (b * C + c) * hw; k < (b * C + c + 1) * hw; k++) {
        s1 += data[k];
        s2 += data[k] * data[k];
        n++;
      }
    }
  const mean = s1 / n;
  return { n, mean, variance: s2 / n - mean * mean };
}

/**
 * Checks sample moments against the true ones with z standard errors:
 * SE(mean) = σ/√n and SE(variance) = √((μ₄ − σ⁴)/n), μ₄ the true fourth central moment
 * (3σ⁴ for a Gaussian, so SE = σ²√(2/n)). Returns the errors in units of standard errors.
 */
export function zScores(m: Moments, mean: number, variance: number, fourth = 3 * variance * variance): { zMean: number; zVar: number } {
  const seMean = Math.sqrt(variance / m.n);
  const seVar = Math.sqrt((fourth - variance * variance) / m.n);
  return { zMean: (m.mean - mean) / seMean, zVar: (m.variance - variance) / seVar };
}

/** Fourth central moment of the mixture. */
export function mixtureFourth(m: Mixture): number {
  const { mean } = mixtureMoments(m);
  let f = 0;
  for (let k = 0; k < 2; k++) {
    const d = m.mu[k] - mean;
    const s2 = m.s[k] ** 2;
    f += m.weights[k] * (d ** 4 + 6 * d * d * s2 + 3 * s2 * s2);
  }
  return f;
}

/** Φ, the standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const erf = 1 - (((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t) * Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * The exact output distribution of DDPM (fixed_small) / DDIM(η) steps for Gaussian data
 * N(μ, s²) and the exact ε-predictor: every step is then x' = K·(x − √ᾱ·μ) + c + σ·z, so the
 * mean and variance follow a scalar recursion. Written from the papers' formulas (Ho et al.
 * eq. 7; Song et al. eqs. 12 and 16), independently of the library, it gives what a correct
 * implementation must produce, including the discretisation error of the sampler.
 */
export interface DiscreteStep {
  alphaBar: number;
  alphaBarPrev: number;
  /** 'ddpm' (fixed_small posterior variance) or a DDIM η. */
  kind: 'ddpm' | number;
  /** DDPM adds no noise at t = 0. */
  lastNoiseFree?: boolean;
}

export function discreteRecursion(steps: DiscreteStep[], mu: number, s2: number, start: { mean: number; variance: number }): { mean: number; variance: number } {
  let { mean, variance } = start;
  for (const st of steps) {
    const a = st.alphaBar;
    const ap = st.alphaBarPrev;
    const v = a * s2 + 1 - a;
    // x̂0 = μ + √a·s²(x − √a·μ)/v,  ε̂ = √(1−a)(x − √a·μ)/v
    let K: number, c: number, sigma2: number;
    if (st.kind === 'ddpm') {
      const beta = 1 - a / ap;
      const b0 = (Math.sqrt(ap) * beta) / (1 - a);
      const bx = (Math.sqrt(a / ap) * (1 - ap)) / (1 - a);
      // x' = b0·x̂0 + bx·x + σz = (b0√a s²/v + bx)(x − √a μ) + b0·μ + bx·√a·μ + σz
      K = (b0 * Math.sqrt(a) * s2) / v + bx;
      c = b0 * mu + bx * Math.sqrt(a) * mu;
      sigma2 = st.lastNoiseFree ? 0 : ((1 - ap) / (1 - a)) * beta;
    } else {
      sigma2 = st.kind * st.kind * ((1 - ap) / (1 - a)) * (1 - a / ap);
      const dir = Math.sqrt(Math.max(1 - ap - sigma2, 0));
      K = (Math.sqrt(ap) * Math.sqrt(a) * s2 + dir * Math.sqrt(1 - a)) / v;
      c = Math.sqrt(ap) * mu;
    }
    mean = K * (mean - Math.sqrt(a) * mu) + c;
    variance = K * K * variance + sigma2;
  }
  return { mean, variance };
}
