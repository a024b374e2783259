/**
 * Do the samplers sample the right distribution? Each sampler is run with an analytic model
 * (the exact noise predictor / score / consistency function of known data,
 * test/helpers/analytic.ts) on N = 8·64·64 = 32,768 values per channel, and the sample mean
 * and variance are compared with their expected values.
 *
 * Tolerance: 5 standard errors of the estimator (|z| ≤ 5), SE(mean) = σ/√N and
 * SE(variance) = √((μ₄ − σ⁴)/N) (= σ²√(2/N) for a Gaussian): for N = 32,768, 2.8% of σ for
 * the mean and 3.9% of σ² for the variance. A correct sampler fails such a check with
 * probability below 1e-6 (and the runs are seeded, so results are reproducible).
 *
 * Expected values:
 *   - SDE samplers, consistency sampling, the forward SDE: the data's moments (the exact
 *     marginal at the final time ε). The discretisation bias of the chosen step counts is well
 *     below one standard error (see the z-scores printed at the end); predictor–corrector
 *     sampling gets an extra allowance of snr²·σ² on the variance, the stationary bias of the
 *     unadjusted Langevin corrector (its step ε = 2·snr²·σ² inflates a Gaussian's variance by
 *     the factor 1/(1 − snr²) at most).
 *   - DDPM / DDIM: these discretisations are biased at the step counts asked for (DDIM with 50
 *     steps shrinks a Gaussian's variance by 13%, η = 1 by 24%, DDPM's fixed_small variance
 *     by 2% over 1000 steps). For Gaussian data every step is linear, so the exact output
 *     moments of the discrete algorithm follow from a scalar recursion written from the papers'
 *     formulas (discreteRecursion); the samples are checked against those within 5 SE, and the
 *     recursion's distance to the data is asserted to stay within the stated bias bounds.
 * The models run on native tensors (one fused kernel call each; the mixture model in JS), so
 * the whole file takes well under a minute on two cores.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  CMStochasticIterativeScheduler,
  DDIMScheduler,
  DDPMScheduler,
  Generator,
  SubVPSDE,
  VESDE,
  VPSDE,
  affineStep,
  forwardSde,
  sampleLoop,
  sampleSde,
  type Sde,
  type SdeSamplerMethod,
  type Tensor,
} from '../lib/index.js';
import {
  gaussianEps,
  gaussianScore,
  meanTensor,
  mixtureEps,
  mixtureFourth,
  mixtureMoments,
  moments,
  normalCdf,
  discreteRecursion,
  type DiscreteStep,
  zScores,
  type Gaussian,
  type Mixture,
} from './helpers/analytic.js';

const SHAPE = [8, 2, 64, 64];
const Z = 5;
const DATA: Gaussian = { mu: [0.5, -0.3], s: 0.4 };
const MIX: Mixture = { weights: [0.3, 0.7], mu: [-0.6, 0.5], s: [0.2, 0.3] };
const REPORT: string[] = [];

afterAll(() => {
  console.log(`sampler statistics (z = error / standard error, |z| <= ${Z} required)\n${REPORT.join('\n')}`);
});

/**
 * Checks both channels against expected moments (per channel) and records the z-scores;
 * `varianceAllowance` (absolute) is added to the 5-SE variance tolerance where a sampler has
 * a known bias (stated where used).
 */
async function checkGaussian(
  label: string,
  sample: Tensor,
  variance: number | number[] = DATA.s ** 2,
  mean: number[] = DATA.mu,
  varianceAllowance = 0,
): Promise<void> {
  const data = await sample.toFloat32Array();
  const zs: string[] = [];
  for (let c = 0; c < SHAPE[1]; c++) {
    const v = typeof variance === 'number' ? variance : variance[c];
    const m = moments(data, sample.shape, c);
    const { zMean, zVar } = zScores(m, mean[c], v);
    const seVar = Math.abs((m.variance - v) / zVar);
    zs.push(`c${c}: mean ${m.mean.toFixed(4)}/${mean[c].toFixed(4)} (z ${zMean.toFixed(2)}), var ${m.variance.toFixed(4)}/${v.toFixed(4)} (z ${zVar.toFixed(2)})`);
    expect(Math.abs(zMean), `${label} channel ${c} mean ${m.mean} vs ${mean[c]}`).toBeLessThanOrEqual(Z);
    expect(Math.abs(m.variance - v), `${label} channel ${c} variance ${m.variance} vs ${v}`).toBeLessThanOrEqual(Z * seVar + varianceAllowance);
  }
  REPORT.push(`${label}: ${zs.join('; ')}`);
  sample.dispose();
}

async function checkMixture(label: string, sample: Tensor): Promise<void> {
  const data = await sample.toFloat32Array();
  const { mean, variance } = mixtureMoments(MIX);
  const m = moments(data, sample.shape);
  const { zMean, zVar } = zScores(m, mean, variance, mixtureFourth(MIX));
  // Mode weights: the fraction below the midpoint of the two means, against its exact value
  // Σ_k π_k·Φ((mid − μ_k)/s_k), with the binomial standard error.
  const mid = (MIX.mu[0] + MIX.mu[1]) / 2;
  const p = MIX.weights[0] * normalCdf((mid - MIX.mu[0]) / MIX.s[0]) + MIX.weights[1] * normalCdf((mid - MIX.mu[1]) / MIX.s[1]);
  let below = 0;
  for (const v of data) if (v < mid) below++;
  const frac = below / data.length;
  const zFrac = (frac - p) / Math.sqrt((p * (1 - p)) / data.length);
  REPORT.push(
    `${label}: mean ${m.mean.toFixed(4)}/${mean.toFixed(4)} (z ${zMean.toFixed(2)}), var ${m.variance.toFixed(4)}/${variance.toFixed(4)} (z ${zVar.toFixed(2)}), P(x < ${mid.toFixed(2)}) ${frac.toFixed(4)}/${p.toFixed(4)} (z ${zFrac.toFixed(2)})`,
  );
  expect(Math.abs(zMean), `${label} mean`).toBeLessThanOrEqual(Z);
  expect(Math.abs(zVar), `${label} variance`).toBeLessThanOrEqual(Z);
  expect(Math.abs(zFrac), `${label} mode weight`).toBeLessThanOrEqual(Z);
  sample.dispose();
}

/** The recursion's steps for a DDPM/DDIM schedule (ᾱ_prev = 1 after the last step). */
function recursionSteps(ab: Float64Array, timesteps: number[], stride: number, kind: 'ddpm' | number): DiscreteStep[] {
  return timesteps.map((t) => ({
    alphaBar: ab[t],
    alphaBarPrev: t - stride >= 0 ? ab[t - stride] : 1,
    kind,
    lastNoiseFree: kind === 'ddpm' && t === 0,
  }));
}

/** Expected moments per channel of a discrete sampler, and its relative variance bias against the data. */
function expectedDiscrete(steps: DiscreteStep[], start?: (mu: number) => { mean: number; variance: number }) {
  const out = DATA.mu.map((mu) => discreteRecursion(steps, mu, DATA.s ** 2, start ? start(mu) : { mean: 0, variance: 1 }));
  return {
    mean: out.map((o) => o.mean),
    variance: out.map((o) => o.variance),
    bias: Math.max(...out.map((o) => Math.abs(o.variance / DATA.s ** 2 - 1))),
    meanBias: Math.max(...out.map((o, c) => Math.abs(o.mean - DATA.mu[c]))),
  };
}

describe('discrete samplers with the exact ε of Gaussian data', () => {
  const ddpm = new DDPMScheduler({ clip_sample: false });
  const discrete = (ab: Float64Array) => (t: number) => ({ a: Math.sqrt(ab[t]), b: Math.sqrt(1 - ab[t]) });

  it('DDPM, 1000 steps', async () => {
    const model = gaussianEps(DATA, SHAPE, discrete(ddpm.alphasCumprod));
    const r = await sampleLoop({ model: model.fn, scheduler: ddpm, steps: 1000, shape: SHAPE, generator: new Generator(11) });
    const e = expectedDiscrete(recursionSteps(ddpm.alphasCumprod, r.timesteps, 1, 'ddpm'));
    REPORT.push(`DDPM 1000 steps: exact variance bias of the algorithm ${(100 * e.bias).toFixed(2)}% (bound 2.5%), mean bias ${e.meanBias.toExponential(1)}`);
    expect(e.bias).toBeLessThan(0.025);
    expect(e.meanBias).toBeLessThan(0.005);
    await checkGaussian('DDPM 1000 steps', r.sample, e.variance, e.mean);
    model.dispose();
  });

  for (const [eta, bound] of [
    [0, 0.14],
    [1, 0.25],
  ] as const) {
    it(`DDIM, 50 steps, eta ${eta}`, async () => {
      const s = new DDIMScheduler({ clip_sample: false });
      const model = gaussianEps(DATA, SHAPE, discrete(s.alphasCumprod));
      const r = await sampleLoop({ model: model.fn, scheduler: s, steps: 50, shape: SHAPE, generator: new Generator(12 + eta), stepOptions: { eta } });
      const e = expectedDiscrete(recursionSteps(s.alphasCumprod, r.timesteps, 20, eta));
      REPORT.push(`DDIM 50 steps eta ${eta}: exact variance bias of the algorithm ${(100 * e.bias).toFixed(2)}% (bound ${(100 * bound).toFixed(0)}%), mean bias ${e.meanBias.toExponential(1)}`);
      expect(e.bias).toBeLessThan(bound);
      expect(e.meanBias).toBeLessThan(0.01);
      await checkGaussian(`DDIM 50 steps eta ${eta}`, r.sample, e.variance, e.mean);
      model.dispose();
    });
  }

  it('truncated DDPM returns x̂0 = E[x0 | x_t] of the step it stopped at', async () => {
    const model = gaussianEps(DATA, SHAPE, discrete(ddpm.alphasCumprod));
    const r = await sampleLoop({ model: model.fn, scheduler: ddpm, steps: 1000, shape: SHAPE, generator: new Generator(14), stopAfter: 700 });
    expect(r.truncated).toBe(true);
    expect(r.timesteps.length).toBe(700);
    // x_t at the last timestep run (t = 300), then x̂0 = μ + √ᾱ·s²(x_t − √ᾱ·μ)/v.
    const ab = ddpm.alphasCumprod;
    const t = r.timesteps[699];
    expect(t).toBe(300);
    const xt = expectedDiscrete(recursionSteps(ab, r.timesteps.slice(0, 699), 1, 'ddpm'));
    const s2 = DATA.s ** 2;
    const k = (Math.sqrt(ab[t]) * s2) / (ab[t] * s2 + 1 - ab[t]);
    const mean = DATA.mu.map((mu, c) => mu + k * (xt.mean[c] - Math.sqrt(ab[t]) * mu));
    await checkGaussian('DDPM truncated after 700 of 1000 steps (x̂0 at t=300)', r.sample, xt.variance.map((v) => k * k * v), mean);
    model.dispose();
  });

  it('starting late (img2img, strength 0.6) from data samples', async () => {
    const s = new DDIMScheduler({ clip_sample: false });
    const model = gaussianEps(DATA, SHAPE, discrete(s.alphasCumprod));
    // Init images drawn from the data distribution: μ + s·z.
    const mu = meanTensor(SHAPE, DATA.mu);
    const init = (await affineStep({ x: mu, noise: new Generator(99).draw(SHAPE[0]), bx: 1, bz: DATA.s })).out;
    const r = await sampleLoop({ model: model.fn, scheduler: s, steps: 50, shape: SHAPE, generator: new Generator(15), init: { image: init, strength: 0.6 }, stepOptions: { eta: 1 } });
    expect(r.timesteps.length).toBe(30);
    expect(r.timesteps[0]).toBe(580);
    // q(x_580 | x0) applied to data samples gives the exact marginal N(√ᾱμ, ᾱs² + 1 − ᾱ).
    const a = s.alphasCumprod[580];
    const e = expectedDiscrete(recursionSteps(s.alphasCumprod, r.timesteps, 20, 1), (m) => ({ mean: Math.sqrt(a) * m, variance: a * DATA.s ** 2 + 1 - a }));
    await checkGaussian('DDIM eta 1, img2img strength 0.6 (30 of 50 steps)', r.sample, e.variance, e.mean);
    init.dispose();
    mu.dispose();
    model.dispose();
  });
});

describe('SDE samplers with the exact ε (VP) / score (VE) of Gaussian data', () => {
  const cases: { sde: Sde; method: SdeSamplerMethod; steps: number; name: string }[] = [
    { sde: new VPSDE(), method: 'reverse-sde', steps: 1000, name: 'VP reverse SDE (Euler–Maruyama), 1000 steps' },
    { sde: new VPSDE(), method: 'pf-ode', steps: 100, name: 'VP probability-flow ODE (Heun), 100 steps' },
    { sde: new VPSDE(), method: 'pc', steps: 500, name: 'VP predictor–corrector (snr 0.16), 500 steps' },
    { sde: new SubVPSDE(), method: 'reverse-sde', steps: 1000, name: 'sub-VP reverse SDE, 1000 steps' },
    { sde: new VESDE({ sigmaMin: 0.01, sigmaMax: 50 }), method: 'reverse-sde', steps: 1000, name: 'VE reverse SDE, 1000 steps' },
    { sde: new VESDE({ sigmaMin: 0.01, sigmaMax: 50 }), method: 'pf-ode', steps: 200, name: 'VE probability-flow ODE (Heun), 200 steps' },
    { sde: new VESDE({ sigmaMin: 0.01, sigmaMax: 50 }), method: 'pc', steps: 500, name: 'VE predictor–corrector (snr 0.16), 500 steps' },
  ];
  cases.forEach((c, k) => {
    it(c.name, async () => {
      const coefs = (t: number) => {
        const { mean, std } = c.sde.marginal(t);
        return { a: mean, b: std };
      };
      const model = c.sde.kind === 've' ? gaussianScore(DATA, SHAPE, coefs) : gaussianEps(DATA, SHAPE, coefs);
      const r = await sampleSde({
        model: model.fn,
        sde: c.sde,
        method: c.method,
        steps: c.steps,
        shape: SHAPE,
        generator: new Generator(100 + k),
        timeInput: (t) => t,
      });
      // The last step stops at t = ε without noise: the sample is x_ε, of variance m(ε)²s² + std(ε)².
      const { mean, std } = c.sde.marginal(r.times[r.times.length - 1]);
      const variance = mean * mean * DATA.s ** 2 + std * std;
      const allowance = c.method === 'pc' ? 0.16 ** 2 * variance : 0;
      await checkGaussian(c.name, r.sample, variance, DATA.mu.map((m) => mean * m), allowance);
      model.dispose();
    });
  });
});

describe('consistency sampling with the analytic consistency function of Gaussian data', () => {
  // Along the probability-flow ODE of x_σ = x0 + σz, (x − μ)/√(s² + σ²) is constant, so
  // f(x, σ) = μ + (x − μ)·√(s² + σ_min²)/√(s² + σ²). The model output F solves c_skip·x + c_out·F = f.
  for (const timesteps of [null, [22, 0]] as const) {
    it(timesteps ? `multistep, timesteps [${timesteps.join(', ')}]` : 'one step', async () => {
      const s = new CMStochasticIterativeScheduler({ clip_denoised: false });
      const { sigma_min: smin, sigma_data: sd } = s.config;
      const mu = meanTensor(SHAPE, DATA.mu);
      const model = async (input: Tensor, t: number[]) => {
        const sigma = Math.exp(t[0] / 250);
        const { cSkip, cOut } = s.scalingsForBoundaryCondition(sigma);
        const r = Math.sqrt(DATA.s ** 2 + smin * smin) / Math.sqrt(DATA.s ** 2 + sigma * sigma);
        const scale = Math.sqrt(sigma * sigma + sd * sd); // x = input·√(σ² + σ_data²)
        return (await affineStep({ x: input, m: mu, bx: ((r - cSkip) * scale) / cOut, bm: (1 - r) / cOut })).out;
      };
      const r = await sampleLoop({ model, scheduler: s, steps: timesteps ? { timesteps } : 1, shape: SHAPE, generator: new Generator(200) });
      const variance = timesteps ? DATA.s ** 2 + smin * smin : ((DATA.s ** 2 + smin * smin) * 80 ** 2) / (DATA.s ** 2 + 80 ** 2);
      await checkGaussian(`consistency ${timesteps ? `timesteps [${timesteps.join(', ')}]` : 'one step'}`, r.sample, variance);
      mu.dispose();
    });
  }
});

describe('a mixture of two Gaussians', () => {
  // DDPM with fixed_small under-disperses by ~1% over 1000 steps (above); its fixed_large
  // variant and the VP SDE samplers have no bias at the 5-SE resolution.
  it('DDPM (fixed_large) 1000 steps, VP reverse SDE 1000 steps and VP PF-ODE 200 steps: mean, variance, mode weights', async () => {
    const ddpm = new DDPMScheduler({ clip_sample: false, variance_type: 'fixed_large' });
    const ab = ddpm.alphasCumprod;
    const discrete = (t: number) => ({ a: Math.sqrt(ab[t]), b: Math.sqrt(1 - ab[t]) });
    const r = await sampleLoop({ model: mixtureEps(MIX, discrete), scheduler: ddpm, steps: 1000, shape: SHAPE, generator: new Generator(300) });
    await checkMixture('mixture, DDPM fixed_large 1000 steps', r.sample);
    const sde = new VPSDE();
    const vp = (t: number) => {
      const { mean, std } = sde.marginal(t);
      return { a: mean, b: std };
    };
    for (const [method, steps] of [
      ['reverse-sde', 1000],
      ['pf-ode', 200],
    ] as const) {
      const s = await sampleSde({ model: mixtureEps(MIX, vp), sde, method, steps, shape: SHAPE, generator: new Generator(302), timeInput: (t) => t });
      await checkMixture(`mixture, VP ${method} ${steps} steps`, s.sample);
    }
  });
});

describe('forward SDE', () => {
  const sdes: [string, Sde][] = [
    ['VP', new VPSDE()],
    ['sub-VP', new SubVPSDE()],
    ['VE', new VESDE({ sigmaMin: 0.01, sigmaMax: 50 })],
  ];
  sdes.forEach(([name, sde], k) => {
    it(`${name}: Euler–Maruyama from x0 to t = 0.5 and 1 matches the closed-form marginal`, async () => {
      const x0 = meanTensor(SHAPE, DATA.mu);
      for (const tEnd of [0.5, 1]) {
        const x = await forwardSde({ sde, x0, tEnd, steps: 1000, generator: new Generator(400 + k) });
        const { mean, std } = sde.marginal(tEnd);
        await checkGaussian(`forward ${name} SDE to t=${tEnd}`, x, std * std, DATA.mu.map((m) => mean * m));
      }
      x0.dispose();
    });
  });
});
