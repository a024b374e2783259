/**
 * The benchmark cases: public checkpoints' exact configs (weights generated from a seed,
 * since the real ones are not available offline) and the embedded tile model (its shipped
 * weights), at the batch sizes issue #8 asks for.
 */
import { embeddedModelDir } from '../lib/index.js';
import { CD_IMAGENET64_L2, DDPM_CIFAR10_32 } from '../test/helpers/configs.js';

export interface BenchModel {
  /** Folder name under bench/.weights/. */
  id: string;
  /** The Hub checkpoint whose config this is, or where the model comes from. */
  hub: string;
  /** Seeded random weights for this config (test/helpers/random-model.ts) ... */
  generate?: { config: Record<string, unknown>; seed: number };
  /** ... or a model folder that exists (the embedded model). */
  folder?: string;
  size: number;
  channels: number;
  timestep: number;
  /** Class id for class-conditional models (the same for every image). */
  classLabel?: number;
}

export interface BenchCase {
  id: string;
  model: BenchModel;
  batch: number;
  /** Timed runs per runtime: more for short forwards, whose medians the shared machine disturbs most. */
  runs: number;
}

export const MODELS = {
  cifar: { id: 'ddpm-cifar10-32', hub: 'google/ddpm-cifar10-32', generate: { config: DDPM_CIFAR10_32, seed: 1001 }, size: 32, channels: 3, timestep: 500 },
  imagenet: {
    id: 'cd-imagenet64-l2',
    hub: 'openai/diffusers-cd_imagenet64_l2',
    generate: { config: CD_IMAGENET64_L2, seed: 1002 },
    size: 64,
    channels: 3,
    timestep: 1095.5,
    classLabel: 145,
  },
  // The one-step student's time input at sigma_max = 80: 250 ln 80.
  tiles: { id: 'tiles32', hub: 'embedded tile model', folder: embeddedModelDir(), size: 32, channels: 4, timestep: 1095.5, classLabel: 1 },
} satisfies Record<string, BenchModel>;

export const CASES: BenchCase[] = [
  { id: 'cifar10-32-b1', model: MODELS.cifar, batch: 1, runs: 41 },
  { id: 'cifar10-32-b8', model: MODELS.cifar, batch: 8, runs: 15 },
  { id: 'cd-imagenet64-b1', model: MODELS.imagenet, batch: 1, runs: 15 },
  { id: 'tiles32-b1', model: MODELS.tiles, batch: 1, runs: 41 },
  { id: 'tiles32-b16', model: MODELS.tiles, batch: 16, runs: 21 },
];
