/**
 * Which model a command runs: a folder given on the command line, or the embedded default
 * (loadPipeline() with no folder: the one-step tile model under models/).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { LoadUNetOptions } from '../unet/load.js';

export interface ModelFlags {
  int8?: boolean;
  device?: string;
}

/** Load options from --int8 / --device; loadUNet refuses what this build cannot do. */
export function loadOptions(flags: ModelFlags): LoadUNetOptions {
  const o: Record<string, unknown> = {};
  if (flags.device !== undefined) o.device = flags.device;
  if (flags.int8) o.dtype = 'int8';
  return o as LoadUNetOptions;
}

/** The model's name in manifests: its absolute folder, or "embedded". */
export function modelName(dir: string | undefined): string {
  return dir === undefined ? 'embedded' : path.resolve(dir);
}

export async function openPipeline(dir: string | undefined, flags: ModelFlags = {}): Promise<Pipeline> {
  return loadPipeline(dir === undefined ? undefined : path.resolve(dir), loadOptions(flags));
}

/** Whether a folder is a pipeline (model_index.json) rather than a bare UNet (config.json). */
export function isPipelineFolder(dir: string): boolean {
  return existsSync(path.join(dir, 'model_index.json'));
}
