/**
 * The CLI's sampler and step count when none is given: the fastest setting that still gives
 * good images for the model's kind (the library's own defaults are diffusers' pipeline
 * defaults, e.g. 1000 DDPM steps, which are faithful but slow).
 *   - consistency models: one step (what they are trained for);
 *   - discrete ε/v/x0 models: DPM-Solver++ 2M, 20 steps (Lu et al. 2022: near-converged in 15–20);
 *     DDIM, 50 steps, where DPM-Solver++ does not fit the model;
 *   - score-SDE models: the probability-flow ODE, Heun, 100 steps;
 * unless the model card (pipeline/model_card.ts) names its own default sampler and steps.
 */
import type { Pipeline, SamplerName } from '../pipeline/pipeline.js';

export interface SamplerChoice {
  sampler: SamplerName;
  steps: number;
}

const PREFERENCE: SamplerChoice[] = [
  { sampler: 'consistency', steps: 1 },
  { sampler: 'dpm++2m', steps: 20 },
  { sampler: 'ddim', steps: 50 },
  { sampler: 'pf-ode', steps: 100 },
];

/** Steps for a sampler chosen by the user without --steps. */
const STEPS: Partial<Record<SamplerName, number>> = { consistency: 1, 'dpm++2m': 20, ddim: 50, euler: 30, 'euler-ancestral': 30, 'pf-ode': 100 };

export function fastDefaults(pipe: Pipeline, sampler?: SamplerName): SamplerChoice {
  const supported = pipe.samplers;
  const card = pipe.card;
  if (card.defaultSampler !== undefined && (sampler === undefined || sampler === card.defaultSampler)) {
    const s = card.defaultSampler as SamplerName;
    return { sampler: s, steps: card.defaultSteps ?? STEPS[s] ?? defaultSteps(s) };
  }
  if (sampler !== undefined) return { sampler, steps: STEPS[sampler] ?? defaultSteps(sampler) };
  return PREFERENCE.find((c) => supported.includes(c.sampler)) ?? { sampler: pipe.defaultSampler, steps: defaultSteps(pipe.defaultSampler) };
}

function defaultSteps(sampler: SamplerName): number {
  return sampler === 'ddpm' || sampler === 'sde-vp' || sampler === 'pc' ? 1000 : sampler === 'sde-ve' ? 2000 : 50;
}
