/**
 * loadUNet(dir): a diffusers UNet2DModel into a runnable UNet. `dir` may be the model's own
 * folder (config.json + weights), a pipeline folder with a `unet/` subfolder, or that
 * subfolder (checkpoint/layout.ts). The weights may be safetensors or PyTorch .bin (read by
 * the restricted reader that executes nothing), single-file or sharded, of any variant
 * (checkpoint/weights.ts), under current or legacy diffusers names. Weight files are
 * memory-mapped and checked tensor by tensor against the shapes the config implies before
 * anything runs.
 */
import path from 'node:path';
import { CONFIG_FILE, locateModel } from '../checkpoint/layout.js';
import { findWeightFiles } from '../checkpoint/weights.js';
import { FusediffError } from '../errors.js';
import { readJsonFile } from '../json.js';
import { native, type PlanDescription, type WeightSpec } from '../native.js';
import { parseUNet2DConfig, type UNet2DConfig } from './config.js';
import { UNet } from './unet.js';

// loadPipeline reads its JSON files with this too.
export { readJsonFile };

export interface LoadUNetOptions {
  /**
   * 'cpu' (default), or 'cuda' / 'cuda:N' for the CUDA backend: the addon opens
   * libfusediff_cuda.so (beside the addon, or at $FUSEDIFF_CUDA_LIBRARY) when asked; where the
   * library, the driver or a GPU is missing, loading fails with E_BACKEND_UNAVAILABLE saying which.
   */
  device?: 'cpu' | 'cuda' | `cuda:${number}`;
  /**
   * CUDA only: how convolutions multiply on the device, always with float32 accumulation:
   * 'tf32' (default, tensor cores), 'fp32' (plain float32 FMA), 'bf16' (tensor cores).
   */
  precision?: 'tf32' | 'fp32' | 'bf16';
  dtype?: 'float32';
  /** Force a CPU kernel path (default: the best for this CPU, or FUSEDIFF_CPU). */
  kernels?: 'avx512' | 'avx2' | 'generic' | 'reference';
  /**
   * Load a weights variant, e.g. 'fp16' for diffusion_pytorch_model.fp16.safetensors (or
   * .fp16.bin). Half-precision weights are converted to float32: the CPU backend computes in
   * float32.
   */
  variant?: string;
}

export async function loadUNet(dir: string, options: LoadUNetOptions = {}): Promise<UNet> {
  const device = options.device ?? 'cpu';
  if (typeof device !== 'string' || !/^(cpu|cuda(:\d{1,3})?)$/.test(device))
    throw new FusediffError('E_BACKEND_UNAVAILABLE', `unknown device "${String(device)}" (use "cpu", "cuda" or "cuda:N")`);
  if (options.precision !== undefined) {
    if (device === 'cpu') throw new FusediffError('E_ARGUMENT', 'precision applies to device "cuda" only (the CPU computes in float32)');
    if (!['tf32', 'fp32', 'bf16'].includes(options.precision))
      throw new FusediffError('E_ARGUMENT', `unknown precision "${String(options.precision)}" (use "tf32", "fp32" or "bf16")`);
  }
  if (options.kernels !== undefined && device !== 'cpu')
    throw new FusediffError('E_ARGUMENT', 'kernels selects a CPU kernel path; it does not apply to device "cuda"');
  if (options.dtype !== undefined && options.dtype !== 'float32')
    throw new FusediffError('E_UNSUPPORTED', `dtype "${String(options.dtype)}" is not supported yet (use "float32")`);
  if (typeof dir !== 'string' || dir.length === 0) throw new FusediffError('E_ARGUMENT', 'loadUNet expects a folder path');
  const layout = await locateModel(dir);
  const configPath = path.join(layout.unet, CONFIG_FILE);
  const config = parseUNet2DConfig(await readJsonFile(configPath), configPath);
  const weights = await findWeightFiles(layout, { variant: options.variant });
  const handle = await native().NativeUNet.load(config, weights, options.kernels, device, options.precision);
  return new UNet(config, handle, weights);
}

/** The weight names and shapes a config needs (diffusers names, PyTorch shapes). */
export function expectedWeights(config: UNet2DConfig): WeightSpec[] {
  return native().NativeUNet.expectedWeights(config);
}

/**
 * The plan a config gives, without weights: with opFlops(), what a checkpoint costs per
 * image before its weights are downloaded.
 */
export function expectedPlan(config: UNet2DConfig): PlanDescription {
  return native().NativeUNet.expectedPlan(config);
}
