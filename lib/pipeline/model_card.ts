/**
 * What a pipeline folder says about how to use its model, beyond diffusers' own keys: the
 * `_fusediff` block of model_index.json (diffusers' config loader ignores keys that start
 * with "_", so the folder stays a valid diffusers pipeline). The embedded tile model carries
 * one; any model may.
 *
 *   "_fusediff": {
 *     "description": "...",
 *     "class_names": ["floor", "wall", ...],   // class id i is class_names[i]
 *     "null_class_label": 5,                    // the unconditional id for classifier-free guidance
 *     "default_guidance_scale": 2.0,            // used when classes are given and no scale is
 *     "default_sampler": "ddim", "default_steps": 50
 *   }
 *
 * Every key is optional; a present key of the wrong type is E_CONFIG.
 */
import { FusediffError } from '../errors.js';

export interface ModelCard {
  description?: string;
  classNames?: readonly string[];
  nullClassLabel?: number;
  defaultGuidanceScale?: number;
  defaultSampler?: string;
  defaultSteps?: number;
}

export function parseModelCard(index: Record<string, unknown>, where: string): ModelCard {
  const block = index._fusediff;
  if (block === undefined) return {};
  const bad = (key: string, what: string): never => {
    throw new FusediffError('E_CONFIG', `${where}: _fusediff.${key} must be ${what}`);
  };
  if (typeof block !== 'object' || block === null || Array.isArray(block)) bad('', 'an object');
  const b = block as Record<string, unknown>;
  const card: ModelCard = {};
  if (b.description !== undefined) card.description = typeof b.description === 'string' ? b.description : bad('description', 'a string');
  if (b.class_names !== undefined) {
    const names = b.class_names;
    if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string' && n.length > 0))
      bad('class_names', 'a non-empty list of non-empty strings');
    if (new Set(names as string[]).size !== (names as string[]).length) bad('class_names', 'a list without repeated names');
    card.classNames = Object.freeze([...(names as string[])]);
  }
  if (b.null_class_label !== undefined)
    card.nullClassLabel = Number.isInteger(b.null_class_label) && (b.null_class_label as number) >= 0 ? (b.null_class_label as number) : bad('null_class_label', 'a non-negative integer');
  if (b.default_guidance_scale !== undefined)
    card.defaultGuidanceScale = typeof b.default_guidance_scale === 'number' && Number.isFinite(b.default_guidance_scale) ? b.default_guidance_scale : bad('default_guidance_scale', 'a finite number');
  if (b.default_sampler !== undefined) card.defaultSampler = typeof b.default_sampler === 'string' ? b.default_sampler : bad('default_sampler', 'a sampler name');
  if (b.default_steps !== undefined)
    card.defaultSteps = Number.isInteger(b.default_steps) && (b.default_steps as number) >= 1 ? (b.default_steps as number) : bad('default_steps', 'a positive integer');
  return card;
}

/** Class ids for labels given as ids or as names from the card's class_names. */
export function resolveClassLabels(labels: readonly (number | string)[], card: ModelCard): number[] {
  return labels.map((label) => {
    if (typeof label !== 'string') return label;
    const id = card.classNames?.indexOf(label) ?? -1;
    if (id < 0)
      throw new FusediffError(
        'E_ARGUMENT',
        card.classNames ? `unknown class "${label}" (this model's classes: ${card.classNames.join(', ')})` : `class "${label}" given by name, but this model names no classes: use class ids`,
      );
    return id;
  });
}
