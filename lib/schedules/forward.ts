/**
 * The forward (noising) process of a discrete diffusion model (Ho et al. 2020, eq. 4), one
 * fused kernel call each:
 *   q-sample  x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε
 *   velocity  v_t = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0      (Salimans & Ho 2022, "Progressive
 *             Distillation", §4: the v-prediction target)
 * ᾱ is one value for the batch or one per image.
 */
import { FusediffError } from '../errors.js';
import { affineStep, perImage, type Coefficient } from '../step.js';
import type { Tensor } from '../tensor.js';

function rootPairs(alphaBar: Coefficient, batch: number): { a: Float64Array; s: Float64Array } {
  const ab = perImage(alphaBar, batch, 'alpha_cumprod')!;
  for (const v of ab) if (!(v >= 0 && v <= 1)) throw new FusediffError('E_ARGUMENT', `alpha_cumprod must be in [0, 1], got ${v}`);
  return { a: ab.map(Math.sqrt), s: ab.map((v) => Math.sqrt(1 - v)) };
}

/** x_t = √ᾱ·x_0 + √(1 − ᾱ)·noise. */
export async function qSample(x0: Tensor, noise: Tensor, alphaBar: Coefficient): Promise<Tensor> {
  const { a, s } = rootPairs(alphaBar, x0.shape[0]);
  return (await affineStep({ x: x0, m: noise, bx: a, bm: s })).out;
}

/** v = √ᾱ·noise − √(1 − ᾱ)·x_0. */
export async function velocity(x0: Tensor, noise: Tensor, alphaBar: Coefficient): Promise<Tensor> {
  const { a, s } = rootPairs(alphaBar, x0.shape[0]);
  return (await affineStep({ x: x0, m: noise, bx: s.map((v) => -v), bm: a })).out;
}
