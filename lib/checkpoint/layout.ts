/**
 * Where a diffusers checkpoint keeps its parts. Public UNet2DModel checkpoints come in two
 * layouts:
 *   - model:    config.json, the weights and scheduler_config.json side by side
 *               (google/ddpm-cifar10-32, google/ddpm-celebahq-256);
 *   - pipeline: model_index.json with unet/ and scheduler/ subfolders
 *               (openai/diffusers-cd_imagenet64_l2, openai/diffusers-cd_bedroom256_lpips).
 * A pipeline's unet/ folder may also be given on its own ('component'); its scheduler is
 * then the pipeline's. Only these fixed names are looked at: no path is taken from a file.
 */
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { assertInside, isFile } from './paths.js';

export const CONFIG_FILE = 'config.json';
export const SCHEDULER_CONFIG_FILE = 'scheduler_config.json';
export const MODEL_INDEX_FILE = 'model_index.json';

export interface ModelLayout {
  kind: 'model' | 'pipeline' | 'component';
  /** The folder everything lies in; loading reads nothing outside it. */
  root: string;
  /** The folder holding the UNet's config.json and weights. */
  unet: string;
  /** The scheduler's scheduler_config.json wherever the layout keeps it, or null if there is none. */
  schedulerConfig: string | null;
  /** The pipeline's model_index.json, or null if there is none. */
  modelIndex: string | null;
}

/** The first of `candidates` that is a file (checked to lie inside `root`), or null. */
async function firstFile(root: string, candidates: string[]): Promise<string | null> {
  for (const candidate of candidates) {
    if (await isFile(candidate)) {
      await assertInside(root, candidate);
      return candidate;
    }
  }
  return null;
}

/** Finds the UNet, scheduler config and model index of a model, pipeline or pipeline-component folder. */
export async function locateModel(dir: string): Promise<ModelLayout> {
  if (typeof dir !== 'string' || dir.length === 0) throw new FusediffError('E_ARGUMENT', 'expected a model folder path');
  let kind: ModelLayout['kind'];
  let root: string;
  let unet: string;
  let schedulers: string[];  // where the scheduler config may be, in order of preference
  if (await isFile(path.join(dir, CONFIG_FILE))) {
    const parent = path.dirname(path.resolve(dir));
    // A folder with its own model_index.json or scheduler config is a model, whatever its parent.
    const own = (await isFile(path.join(dir, MODEL_INDEX_FILE))) || (await isFile(path.join(dir, SCHEDULER_CONFIG_FILE)));
    if (!own && (await isFile(path.join(parent, MODEL_INDEX_FILE)))) {
      [kind, root, unet] = ['component', parent, dir];
      schedulers = [path.join(parent, 'scheduler', SCHEDULER_CONFIG_FILE)];
    } else {
      [kind, root, unet] = ['model', dir, dir];
      schedulers = [path.join(dir, SCHEDULER_CONFIG_FILE), path.join(dir, 'scheduler', SCHEDULER_CONFIG_FILE)];
    }
  } else if (await isFile(path.join(dir, 'unet', CONFIG_FILE))) {
    [kind, root, unet] = ['pipeline', dir, path.join(dir, 'unet')];
    schedulers = [path.join(dir, 'scheduler', SCHEDULER_CONFIG_FILE), path.join(dir, SCHEDULER_CONFIG_FILE)];
  } else {
    throw new FusediffError(
      'E_IO',
      `no ${CONFIG_FILE} in ${dir} or ${path.join(dir, 'unet')}: not a diffusers UNet2DModel or pipeline folder`,
    );
  }
  await assertInside(root, path.join(unet, CONFIG_FILE));
  return {
    kind,
    root,
    unet,
    schedulerConfig: await firstFile(root, schedulers),
    modelIndex: await firstFile(root, [path.join(root, MODEL_INDEX_FILE)]),
  };
}

/** scheduler_config.json of a model, pipeline or pipeline-component folder, or null if it has none. */
export async function findSchedulerConfig(dir: string): Promise<string | null> {
  return (await locateModel(dir)).schedulerConfig;
}
