/**
 * Samplers of the continuous-time formulation, Song et al. 2021, "Score-Based Generative
 * Modeling through Stochastic Differential Equations", for the VP, sub-VP and VE SDEs of
 * lib/schedules/sde.ts (dx = a(t)·x dt + g(t) dw):
 *
 *   reverse SDE (eq. 6), Euler–Maruyama, t → t − h:
 *       x' = x − (a·x − g²·s)·h + g·√h·z                       s = ∇ₓ log p_t(x) from the model
 *   probability-flow ODE (eq. 13), Euler or Heun (2nd order, two model calls per step):
 *       dx/dt = a·x − ½g²·s
 *   predictor–corrector (Algorithms 2 and 3): at each t, `correctorSteps` annealed Langevin
 *       steps (Algorithm 4/5: ε = 2α(snr·‖z‖/‖s‖)², x ← x + ε·s + √(2ε)·z, α = 1 − β(t)h for VP,
 *       1 for VE), then the Euler–Maruyama predictor.
 *   forward SDE, Euler–Maruyama t → t + h: x' = x + a·x·h + g·√h·z (the noising process; its
 *       marginals are given in closed form by Sde.marginal).
 *
 * Time runs on t_i = 1 − i·(1 − ε)/N, i = 0 … N; the last step lands on t = ε and, as in
 * Song et al.'s samplers, adds no noise (it returns the predictor's mean). The model gives
 * either ε̂ (score = −ε̂/std(t): VP and sub-VP models, e.g. DDPM checkpoints) or the score
 * itself (VE / NCSN models); it is called with timeInput(t): by default t·(N_train − 1) for
 * ε-models (the DDPM timestep) and σ(t) for VE score models (as diffusers' ScoreSdeVePipeline).
 * Every step is one fused kernel call on native tensors.
 */
import { FusediffError } from '../errors.js';
import { Generator } from '../random.js';
import { VESDE, VPSDE, type Sde } from '../schedules/sde.js';
import { affineStep, langevinStep } from '../step.js';
import type { Tensor } from '../tensor.js';
import { checkShape, initialNoise, type Progress } from './loop.js';
import { asModelFn, checkGuidance, evaluate, throwIfAborted, type GuidanceOptions, type Model, type ModelEvaluation } from './model.js';

export type SdeSamplerMethod = 'reverse-sde' | 'pf-ode' | 'pc';

export interface SdeSampleOptions extends GuidanceOptions {
  model: Model;
  sde: Sde;
  method: SdeSamplerMethod;
  /** Number of time steps N. */
  steps: number;
  shape: readonly number[];
  generator?: Generator;
  /** Final time ε (default 1e-3 for VP/sub-VP, 1e-5 for VE). */
  eps?: number;
  /** What the model outputs (default: 'epsilon' for VP/sub-VP, 'score' for VE). */
  modelOutput?: 'epsilon' | 'score';
  /** The model's time input for t (default: t·(numTrainTimesteps − 1) for ε-models, σ(t) for VE). */
  timeInput?: (t: number) => number;
  /** N_train of the default time input of ε-models (1000). */
  numTrainTimesteps?: number;
  /** PF-ODE integrator: 'euler' or 'heun' (default). */
  odeSolver?: 'euler' | 'heun';
  /** PC: Langevin signal-to-noise ratio (default 0.16) and steps per time step (default 1). */
  snr?: number;
  correctorSteps?: number;
  /** PC: one Langevin step size for the whole batch from batch-mean norms (Song et al.'s code); default per image. */
  batchMeanStepSize?: boolean;
  /** Leave out the noise of the last step (default true). */
  denoise?: boolean;
  /** Start late from a clean image at t = strength (SDEdit, Meng et al. 2022). */
  init?: { image: Tensor; strength: number };
  /** Run this many steps, then return Tweedie's estimate of the clean sample at the reached t. */
  stopAfter?: number;
  latents?: Tensor;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface SdeSampleResult {
  sample: Tensor;
  /** The times visited, t_0 … (the last one reached included). */
  times: number[];
  stepMs: number[];
  totalMs: number;
  truncated: boolean;
}

/** The score of a model output at time t: score = k·m. */
function scoreScale(sde: Sde, kind: 'epsilon' | 'score', t: number): number {
  return kind === 'score' ? 1 : -1 / sde.marginal(t).std;
}

export async function sampleSde(o: SdeSampleOptions): Promise<SdeSampleResult> {
  const started = performance.now();
  const shape = checkShape(o.shape);
  const batch = shape[0];
  checkGuidance(o, batch);
  const model = asModelFn(o.model);
  const sde = o.sde;
  const generator = o.generator ?? new Generator();
  const N = o.steps;
  if (!Number.isInteger(N) || N < 1) throw new FusediffError('E_ARGUMENT', `steps must be an integer >= 1, got ${String(N)}`);
  if (!['reverse-sde', 'pf-ode', 'pc'].includes(o.method))
    throw new FusediffError('E_ARGUMENT', `method must be "reverse-sde", "pf-ode" or "pc", got "${String(o.method)}"`);
  const ve = sde instanceof VESDE;
  const eps = o.eps ?? (ve ? 1e-5 : 1e-3);
  if (!(eps > 0 && eps < 1)) throw new FusediffError('E_ARGUMENT', `eps must be in (0, 1), got ${eps}`);
  const kind = o.modelOutput ?? (ve ? 'score' : 'epsilon');
  const nTrain = o.numTrainTimesteps ?? 1000;
  const timeInput = o.timeInput ?? (ve ? (t: number) => (sde as VESDE).sigma(t) : (t: number) => t * (nTrain - 1));
  const snr = o.snr ?? 0.16;
  const correctorSteps = o.correctorSteps ?? 1;
  if (!Number.isInteger(correctorSteps) || correctorSteps < 0) throw new FusediffError('E_ARGUMENT', 'correctorSteps must be an integer >= 0');
  const denoise = o.denoise ?? true;
  throwIfAborted(o.signal);

  // The time grid, possibly starting late.
  let t0 = 1;
  let x: Tensor;
  if (o.init) {
    const { image, strength } = o.init;
    if (typeof strength !== 'number' || !(strength > eps && strength <= 1))
      throw new FusediffError('E_ARGUMENT', `strength must be in (eps, 1], got ${String(strength)}`);
    if (image.shape.join() !== shape.join())
      throw new FusediffError('E_SHAPE', `the init image [${image.shape.join(', ')}] must have the sample shape [${shape.join(', ')}]`);
    t0 = strength;
    const { mean, std } = sde.marginal(t0);
    x = (await affineStep({ x: image, noise: generator.draw(batch), bx: mean, bz: std })).out;
  } else if (o.latents) {
    x = (await affineStep({ x: o.latents, bx: 1 })).out;
  } else {
    x = await initialNoise(shape, sde.priorStd, generator);
  }
  const h = (t0 - eps) / N;
  const times = Array.from({ length: N + 1 }, (_, i) => (i === N ? eps : t0 - i * h));
  const total = o.stopAfter !== undefined ? Math.min(N, o.stopAfter) : N;
  if (o.stopAfter !== undefined && (!Number.isInteger(o.stopAfter) || o.stopAfter < 1))
    throw new FusediffError('E_ARGUMENT', `stopAfter must be an integer >= 1, got ${String(o.stopAfter)}`);

  const evalAt = async (input: Tensor, t: number): Promise<ModelEvaluation> =>
    evaluate(model, input, new Array<number>(batch).fill(timeInput(t)), o);
  const replace = (next: Tensor) => {
    x.dispose();
    x = next;
  };
  const stepMs: number[] = [];
  try {
    for (let i = 0; i < total; i++) {
      throwIfAborted(o.signal);
      const started = performance.now();
      const t = times[i];
      const tn = times[i + 1];
      const dt = t - tn;
      const last = i === N - 1;
      const a = sde.driftCoef(t);
      const g2 = sde.diffusionSquared(t);
      const k = scoreScale(sde, kind, t);
      if (o.method === 'pc') {
        // Corrector (Algorithm 4/5) at t, then the predictor below.
        const alpha = sde instanceof VPSDE ? Math.max(1 - sde.beta(t) * dt, 0) : 1;
        for (let j = 0; j < correctorSteps; j++) {
          const ev = await evalAt(x, t);
          try {
            const r = await langevinStep({
              x,
              m: ev.output,
              noise: generator.draw(batch),
              scoreScale: k,
              alpha,
              snr,
              batchMean: o.batchMeanStepSize ?? false,
              guidanceScale: ev.guidanceScale,
            });
            replace(r.out);
          } finally {
            ev.output.dispose();
          }
        }
      }
      const ev = await evalAt(x, t);
      try {
        if (o.method === 'pf-ode') {
          // dx/dt = a·x + c·m with c = −½g²k;  Euler: x' = x − dt(a·x + c·m).
          const c = -0.5 * g2 * k;
          if ((o.odeSolver ?? 'heun') === 'euler') {
            replace((await affineStep({ x, m: ev.output, bx: 1 - a * dt, bm: -c * dt, guidanceScale: ev.guidanceScale })).out);
          } else {
            // Heun: x_e = x − dt(a₁x + c₁m₁), then x' = x − ½dt[(a₁x + c₁m₁) + (a₂x_e + c₂m₂)],
            // written in x, m₁ (y) and m₂ (m) for one kernel call.
            const xe = (await affineStep({ x, m: ev.output, bx: 1 - a * dt, bm: -c * dt, guidanceScale: ev.guidanceScale })).out;
            let ev2: ModelEvaluation | undefined;
            let m1: Tensor | undefined;
            try {
              ev2 = await evalAt(xe, tn);
              const a2 = sde.driftCoef(tn);
              const c2 = -0.5 * sde.diffusionSquared(tn) * scoreScale(sde, kind, tn);
              // m₁ as a plain tensor (guided outputs are combined first), for the y input.
              m1 = ev.guidanceScale === undefined ? ev.output : (await affineStep({ shape, m: ev.output, b0: 0, bm: 1, guidanceScale: ev.guidanceScale })).out;
              const bx = 1 - 0.5 * dt * a - 0.5 * dt * a2 + 0.5 * dt * dt * a * a2;
              const by = -0.5 * dt * c + 0.5 * dt * dt * a2 * c;
              const bm = -0.5 * dt * c2;
              replace((await affineStep({ x, m: ev2.output, y: m1, bx, bm, by, guidanceScale: ev2.guidanceScale })).out);
            } finally {
              xe.dispose();
              ev2?.output.dispose();
              if (m1 && m1 !== ev.output) m1.dispose();
            }
          }
        } else {
          // Euler–Maruyama predictor: x' = (1 − a·dt)·x + g²·dt·k·m + g·√dt·z.
          const noisy = !(last && denoise);
          replace(
            (
              await affineStep({
                x,
                m: ev.output,
                noise: noisy ? generator.draw(batch) : null,
                bx: 1 - a * dt,
                bm: g2 * dt * k,
                bz: noisy ? Math.sqrt(g2 * dt) : 0,
                guidanceScale: ev.guidanceScale,
              })
            ).out,
          );
        }
      } finally {
        ev.output.dispose();
      }
      stepMs.push(performance.now() - started);
      o.onProgress?.({ step: i + 1, totalSteps: total, timestep: t, stepMs: stepMs[i] });
    }
    const truncated = total < N;
    if (truncated) {
      // Tweedie: x̂0 = (x + std²·score)/mean at the time reached.
      const t = times[total];
      const { mean, std } = sde.marginal(t);
      const ev = await evalAt(x, t);
      try {
        replace(
          (await affineStep({ x, m: ev.output, bx: 1 / mean, bm: (std * std * scoreScale(sde, kind, t)) / mean, guidanceScale: ev.guidanceScale }))
            .out,
        );
      } finally {
        ev.output.dispose();
      }
    }
    return { sample: x, times: times.slice(0, total + 1), stepMs, totalMs: performance.now() - started, truncated };
  } catch (e) {
    x.dispose();
    throw e;
  }
}

export interface ForwardSdeOptions {
  sde: Sde;
  x0: Tensor;
  /** Integrate from t = 0 to tEnd (default 1) in `steps` Euler–Maruyama steps. */
  tEnd?: number;
  steps: number;
  generator?: Generator;
}

/** The forward (noising) SDE by Euler–Maruyama: x' = x + a(t)·x·h + g(t)·√h·z. */
export async function forwardSde(o: ForwardSdeOptions): Promise<Tensor> {
  const tEnd = o.tEnd ?? 1;
  if (!Number.isInteger(o.steps) || o.steps < 1) throw new FusediffError('E_ARGUMENT', 'steps must be an integer >= 1');
  if (!(tEnd > 0 && tEnd <= 1)) throw new FusediffError('E_ARGUMENT', 'tEnd must be in (0, 1]');
  const generator = o.generator ?? new Generator();
  const batch = o.x0.shape[0];
  const h = tEnd / o.steps;
  let x = (await affineStep({ x: o.x0, bx: 1 })).out;
  for (let i = 0; i < o.steps; i++) {
    const t = i * h;
    const next = (
      await affineStep({ x, noise: generator.draw(batch), bx: 1 + o.sde.driftCoef(t) * h, bz: Math.sqrt(o.sde.diffusionSquared(t) * h) })
    ).out;
    x.dispose();
    x = next;
  }
  return x;
}
