/**
 * Step bookkeeping shared by the sigma-indexed schedulers (Euler, Euler-ancestral,
 * DPM-Solver++, consistency): where stepping starts, and the sigma of a timestep.
 */
import { FusediffError } from '../errors.js';
import { timestepList } from './config.js';

/**
 * diffusers' _init_step_index: the index of `t` in the schedule. A timestep listed twice
 * (img2img starting mid-schedule) starts at its second occurrence, so no sigma is skipped.
 * An absent `t` is an error, unless `notFound` says where to start instead.
 */
export function firstStepIndex(timesteps: readonly number[], t: number, className: string, notFound?: number): number {
  const hits = timesteps.flatMap((v, i) => (v === t ? [i] : []));
  if (hits.length === 0) {
    if (notFound !== undefined) return notFound;
    throw new FusediffError('E_ARGUMENT', `${className}: ${t} is not one of the scheduler's timesteps`);
  }
  return hits.length > 1 ? hits[1] : hits[0];
}

/** The sigma of each batch item's timestep (one value for all, or one per item), for addNoise. */
export function sigmasAt(
  timesteps: readonly number[],
  sigmas: ArrayLike<number>,
  t: number | readonly number[],
  batch: number,
  className: string,
): number[] {
  return timestepList(t, batch).map((v) => {
    const i = timesteps.indexOf(v);
    if (i < 0) throw new FusediffError('E_ARGUMENT', `${className}: ${v} is not one of the scheduler's timesteps`);
    return sigmas[i];
  });
}
