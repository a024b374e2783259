/**
 * The embedded default model: a class-conditional 32x32 RGBA game-tile generator (classes
 * floor, wall, feature, item, monster), distilled for one-step consistency sampling, shipped
 * in the package under models/ (training/ holds the recipe, README "The embedded model" its
 * data, licence terms and measured quality). loadPipeline() with no folder loads it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { packageRoot } from '../native.js';

/** models/ folder names: the one-step student (the default) and the teacher it was distilled from. */
export const EMBEDDED_MODELS = { default: 'tiles32', teacher: 'tiles32-teacher' } as const;

export type EmbeddedModelName = keyof typeof EMBEDDED_MODELS;

/** The folder of an embedded model (default: the one-step tile student). */
export function embeddedModelDir(name: EmbeddedModelName = 'default'): string {
  if (!Object.hasOwn(EMBEDDED_MODELS, name))
    throw new FusediffError('E_ARGUMENT', `unknown embedded model "${String(name)}" (use ${Object.keys(EMBEDDED_MODELS).join(' or ')})`);
  const dir = path.join(packageRoot(), 'models', EMBEDDED_MODELS[name]);
  if (!existsSync(path.join(dir, 'model_index.json')))
    throw new FusediffError('E_IO', `the embedded model is missing from this installation (${dir}): reinstall fusediff, or pass a pipeline folder`);
  return dir;
}
