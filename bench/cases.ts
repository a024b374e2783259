/**
 * The benchmark cases: public checkpoints' exact configs (weights generated from a seed,
 * since the real ones are not available offline) at the batch sizes issue #8 asks for.
 */
import { CD_IMAGENET64_L2, DDPM_CIFAR10_32 } from '../test/helpers/configs.js';

export interface BenchModel {
  /** Folder name under bench/.weights/. */
  id: string;
  /** The Hub checkpoint whose config this is. */
  hub: string;
  config: Record<string, unknown>;
  size: number;
  /** Seed of the random weights (test/helpers/random-model.ts). */
  seed: number;
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
  cifar: { id: 'ddpm-cifar10-32', hub: 'google/ddpm-cifar10-32', config: DDPM_CIFAR10_32, size: 32, seed: 1001, timestep: 500 },
  imagenet: {
    id: 'cd-imagenet64-l2',
    hub: 'openai/diffusers-cd_imagenet64_l2',
    config: CD_IMAGENET64_L2,
    size: 64,
    seed: 1002,
    timestep: 1095.5,
    classLabel: 145,
  },
} satisfies Record<string, BenchModel>;

export const CASES: BenchCase[] = [
  { id: 'cifar10-32-b1', model: MODELS.cifar, batch: 1, runs: 41 },
  { id: 'cifar10-32-b8', model: MODELS.cifar, batch: 8, runs: 15 },
  { id: 'cd-imagenet64-b1', model: MODELS.imagenet, batch: 1, runs: 15 },
];
