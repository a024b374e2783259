/**
 * Seeded Gaussian noise. The numbers come from Philox-4x32-10 in native code
 * (native/core/philox.h): the value of element i of image b in draw s is a pure function of
 * (seed_b, s, i), so a seed gives the same noise on any thread count and any backend, and
 * image b of a batch is reproduced exactly by running it alone with its own seed.
 *
 * A Generator holds the seeds and counts draws: every draw (the initial latents, then the
 * noise each step needs) gets the next stream number, 0, 1, 2, ...
 */
import { randomInt } from 'node:crypto';
import { FusediffError } from './errors.js';
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** Largest seed: seeds are integers in [0, 2^53). */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

export function checkSeed(seed: unknown, what = 'seed'): number {
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0 || seed > MAX_SEED)
    throw new FusediffError('E_ARGUMENT', `${what} must be an integer in [0, 2^53), got ${String(seed)}`);
  return seed;
}

/** A random seed, for calls that give none. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 47);
}

/** One draw: the seed of each image and the stream number of the draw. */
export interface NoiseDraw {
  seeds: Float64Array;
  stream: number;
}

export class Generator {
  /** One seed per image, or one seed from which image i takes seed + i. */
  readonly seeds: readonly number[];
  private nextStream: number;

  constructor(seed: number | readonly number[] = randomSeed(), options: { stream?: number } = {}) {
    const list = typeof seed === 'number' ? [seed] : [...seed];
    if (list.length === 0) throw new FusediffError('E_ARGUMENT', 'a Generator needs at least one seed');
    list.forEach((s, i) => checkSeed(s, `seed ${i}`));
    this.seeds = Object.freeze(list);
    this.nextStream = options.stream ?? 0;
    checkSeed(this.nextStream, 'stream');
  }

  /** The seed of each of `batch` images: the given list, or seed + i from a single seed. */
  seedsFor(batch: number): Float64Array {
    if (this.seeds.length === batch) return Float64Array.from(this.seeds);
    if (this.seeds.length === 1) {
      const base = this.seeds[0];
      if (base + batch - 1 > MAX_SEED) throw new FusediffError('E_ARGUMENT', `seed ${base} + ${batch - 1} is above 2^53 - 1`);
      return Float64Array.from({ length: batch }, (_, i) => base + i);
    }
    throw new FusediffError('E_SHAPE', `this Generator has ${this.seeds.length} seeds; a batch of ${batch} needs 1 or ${batch}`);
  }

  /** The stream the next draw will use. */
  get stream(): number {
    return this.nextStream;
  }

  /** Takes the next stream for `batch` images (the kernels generate the values in place). */
  draw(batch: number): NoiseDraw {
    const seeds = this.seedsFor(batch);
    return { seeds, stream: this.nextStream++ };
  }

  /** A tensor of N(0, 1) noise of `shape` ([batch, ...]) from the next stream. */
  async randn(shape: readonly number[]): Promise<Tensor> {
    if (!Array.isArray(shape) || shape.length < 1) throw new FusediffError('E_SHAPE', 'randn needs a shape with a batch dimension');
    const d = this.draw(shape[0]);
    return new Tensor(await native().randn([...shape], d.seeds, d.stream));
  }
}

/** Gaussian noise for one draw of given seeds and stream (what a Generator's draw produces). */
export async function randn(shape: readonly number[], seeds: readonly number[] | Float64Array, stream = 0): Promise<Tensor> {
  const s = Float64Array.from(seeds as ArrayLike<number>);
  s.forEach((v, i) => checkSeed(v, `seed ${i}`));
  return new Tensor(await native().randn([...shape], s, checkSeed(stream, 'stream')));
}
