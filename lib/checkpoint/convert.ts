/**
 * `fusediff convert <dir>`: rewrites a UNet's PyTorch weights (diffusion_pytorch_model.bin,
 * or its shards) as diffusion_pytorch_model.safetensors next to them. The .bin is read by the
 * restricted reader that executes nothing; names, dtypes and values are kept as they are
 * (legacy attention names included, which fusediff and diffusers both accept), one
 * safetensors file even for a sharded checkpoint.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { native } from '../native.js';
import { locateModel } from './layout.js';
import { isFile } from './paths.js';
import { findWeightFiles, weightsFileName } from './weights.js';

export interface ConvertCheckpointOptions {
  /** Convert diffusion_pytorch_model.<variant>.bin into diffusion_pytorch_model.<variant>.safetensors. */
  variant?: string;
  /** Replace an existing safetensors file (default: refuse with E_ARGUMENT). */
  overwrite?: boolean;
}

export interface ConvertCheckpointResult {
  /** The .bin file(s) read. */
  sources: string[];
  /** The safetensors file written. */
  output: string;
  tensors: number;
  /** Bytes of tensor data written. */
  bytes: number;
}

/** Converts the PyTorch weights of a model, pipeline or unet/ folder to safetensors. */
export async function convertCheckpoint(dir: string, options: ConvertCheckpointOptions = {}): Promise<ConvertCheckpointResult> {
  const layout = await locateModel(dir);
  const sources = await findWeightFiles(layout, { variant: options.variant, format: 'bin' });
  const output = path.join(layout.unet, weightsFileName('safetensors', options.variant));
  if (!options.overwrite && (await isFile(output)))
    throw new FusediffError('E_ARGUMENT', `${output} exists already; pass { overwrite: true } to replace it`);
  // Written under another name and renamed when complete: a failed or interrupted
  // conversion never leaves a partial file under the name the loader reads.
  const partial = `${output}.partial-${process.pid}`;
  try {
    const { tensors, bytes } = await native().convertTorchBin(sources, partial);
    await fs.rename(partial, output);
    return { sources, output, tensors, bytes };
  } catch (e) {
    await fs.rm(partial, { force: true });
    if (e instanceof FusediffError) throw e;
    throw new FusediffError('E_IO', `cannot write ${output}: ${(e as Error).message}`);
  }
}
