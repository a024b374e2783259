/**
 * What a sampler calls: a UNet, or any async function from a batch of samples and one
 * timestep per image (and optional class labels) to a tensor of the same batch: the noise
 * prediction (or v, x0, score, as the scheduler's prediction_type says). Plain functions let
 * analytic models, ensembles or remote models stand in for a network.
 *
 * Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance", eq. 6):
 * the conditional and unconditional predictions come from one batched forward of 2·B images
 * (unconditional half first, class id `unconditionalClass`), and the step combines them as
 *     ε̃ = ε_u + w·(ε_c − ε_u)
 * which is the paper's (1 + w')·ε_c − w'·ε_u with w = 1 + w'. w = 1 is the plain conditional
 * model (one forward of B images), w = 0 the unconditional one.
 */
import { FusediffError } from '../errors.js';
import { concatBatch } from '../step.js';
import { Tensor } from '../tensor.js';
import { UNet } from '../unet/unet.js';

export type ModelFn = (x: Tensor, t: number[], classLabels?: number[]) => Promise<Tensor>;
export type Model = UNet | ModelFn;

export function asModelFn(model: Model): ModelFn {
  if (model instanceof UNet) return (x, t, labels) => model.forward(x, t, labels ? { classLabels: labels } : {});
  if (typeof model === 'function') return model;
  throw new FusediffError('E_ARGUMENT', 'the model must be a UNet or an async function (x, t, classLabels) => Tensor');
}

export interface GuidanceOptions {
  /** One class id per image (class-conditional models). */
  classLabels?: readonly number[];
  /** w of ε_u + w·(ε_c − ε_u); undefined or 1: no guidance. */
  guidanceScale?: number;
  /** The class id of the unconditional ("null") prediction. */
  unconditionalClass?: number;
}

export interface ModelEvaluation {
  /** The model output: B images, or 2·B (unconditional then conditional) when guided. */
  output: Tensor;
  /** Pass to the step kernel when the output holds both halves. */
  guidanceScale?: number;
}

export function checkGuidance(g: GuidanceOptions, batch: number): void {
  if (g.classLabels !== undefined) {
    if (g.classLabels.length !== batch)
      throw new FusediffError('E_SHAPE', `got ${g.classLabels.length} class labels for a batch of ${batch}`);
    for (const c of g.classLabels)
      if (!Number.isInteger(c) || c < 0) throw new FusediffError('E_ARGUMENT', `class labels must be integers >= 0, got ${c}`);
  }
  if (g.guidanceScale !== undefined) {
    if (typeof g.guidanceScale !== 'number' || !Number.isFinite(g.guidanceScale))
      throw new FusediffError('E_ARGUMENT', `guidanceScale must be a finite number, got ${String(g.guidanceScale)}`);
    if (g.guidanceScale !== 1 && g.classLabels === undefined)
      throw new FusediffError('E_ARGUMENT', 'classifier-free guidance needs classLabels');
    if (g.guidanceScale !== 1 && (g.unconditionalClass === undefined || !Number.isInteger(g.unconditionalClass) || g.unconditionalClass < 0))
      throw new FusediffError('E_ARGUMENT', 'classifier-free guidance needs the unconditional class id (unconditionalClass)');
  }
}

/** One model evaluation at per-image times `t`, guided when asked (one batched forward). */
export async function evaluate(model: ModelFn, x: Tensor, t: number[], g: GuidanceOptions): Promise<ModelEvaluation> {
  const labels = g.classLabels ? [...g.classLabels] : undefined;
  const w = g.guidanceScale;
  if (w === undefined || w === 1 || !labels) return { output: await checked(model, x, t, labels) };
  const batch = x.shape[0];
  const uncond = new Array<number>(batch).fill(g.unconditionalClass as number);
  if (w === 0) return { output: await checked(model, x, t, uncond) };
  const doubled = await concatBatch([x, x]);
  try {
    const output = await checked(model, doubled, [...t, ...t], [...uncond, ...labels]);
    return { output, guidanceScale: w };
  } finally {
    doubled.dispose();
  }
}

async function checked(model: ModelFn, x: Tensor, t: number[], labels?: number[]): Promise<Tensor> {
  const out = await model(x, t, labels);
  if (!(out instanceof Tensor)) throw new FusediffError('E_ARGUMENT', 'the model function must resolve to a fusediff Tensor');
  if (out.shape[0] !== x.shape[0])
    throw new FusediffError('E_SHAPE', `the model returned a batch of ${out.shape[0]} for an input batch of ${x.shape[0]}`);
  return out;
}

/** Throws E_ABORTED if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new FusediffError('E_ABORTED', `sampling was aborted${signal.reason ? `: ${String(signal.reason)}` : ''}`);
}
