/**
 * What `fusediff generate` records beside its images: one record per image holding every
 * parameter that shaped it, its seed, and the exact command line that re-makes it alone
 * (image i of a batch is a pure function of its own seed, so a batch of one reproduces it
 * byte for byte). The same record is written into the image's PNG as a `fusediff` text chunk.
 */
import type { SamplerName } from '../pipeline/pipeline.js';

/** Parameters shared by every image of a run. */
export interface RunParameters {
  model: string;
  sampler: SamplerName;
  /** Steps asked for (fewer run with an init image). */
  steps: number;
  width: number;
  height: number;
  channels: 3 | 4;
  tileable: boolean;
  guidance?: number;
  eta?: number;
  init?: { file: string; strength: number };
}

export interface ImageRecord extends RunParameters {
  /** The PNG file, relative to the manifest. */
  file: string;
  seed: number;
  class?: number;
  /** Where the image sits in the sprite sheet, when there is one. */
  cell?: { x: number; y: number; width: number; height: number };
  /** The arguments of `fusediff` that re-make this image alone. */
  remake: string[];
}

export interface Manifest {
  fusediff: string;
  createdAt: string;
  parameters: RunParameters;
  /** The sheet, when the images were written as one. */
  grid?: { file: string; columns: number; rows: number; padding: number; scale: number; width: number; height: number };
  images: ImageRecord[];
  /** Steps run and wall time of the whole run. */
  stepsRun: number;
  totalMs: number;
}

/** The command line that makes exactly this image (the file name follows from the seed). */
export function remakeArgs(p: RunParameters, seed: number, classLabel: number | undefined): string[] {
  const args = ['generate'];
  if (p.model !== 'embedded') args.push('--model', p.model);
  args.push('--sampler', p.sampler, '--steps', String(p.steps), '--seed', String(seed));
  if (classLabel !== undefined) args.push('--class', String(classLabel));
  if (p.guidance !== undefined) args.push('--guidance', String(p.guidance));
  if (p.eta !== undefined) args.push('--eta', String(p.eta));
  if (p.tileable) args.push('--tileable');
  args.push('--channels', String(p.channels));
  if (p.init) args.push('--init', p.init.file, '--strength', String(p.init.strength));
  return args;
}

/** The record of one image; nothing in it depends on the time or the batch, so a re-make writes the same bytes. */
export function imageRecord(p: RunParameters, file: string, seed: number, classLabel: number | undefined): ImageRecord {
  return { ...p, file, seed, ...(classLabel !== undefined ? { class: classLabel } : {}), remake: remakeArgs(p, seed, classLabel) };
}
