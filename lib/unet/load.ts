/**
 * loadUNet(dir): a diffusers UNet2DModel into a runnable UNet. `dir` may be the model's own
 * folder (config.json + weights), a pipeline folder with a `unet/` subfolder, or that
 * subfolder (checkpoint/layout.ts). The weights may be safetensors or PyTorch .bin (read by
 * the restricted reader that executes nothing), single-file or sharded, of any variant
 * (checkpoint/weights.ts), under current or legacy diffusers names. Weight files are
 * memory-mapped and checked tensor by tensor against the shapes the config implies before
 * anything runs.
 *
 * dtype 'int8' quantizes a float model at load (unet/quantization.ts has the policy), or runs
 * a folder written by quantizeUNet / `fusediff quantize` (its config.json has a
 * "quantization" entry; such a folder loads as int8 by default). dtype 'bfloat16' runs the
 * conv and linear layers (those the policy does not keep float) with bfloat16 inputs and
 * weights and float32 accumulation.
 */
import path from 'node:path';
import { CONFIG_FILE, locateModel } from '../checkpoint/layout.js';
import { findWeightFiles } from '../checkpoint/weights.js';
import { FusediffError } from '../errors.js';
import { readJsonFile } from '../json.js';
import { native, type PlanDescription, type WeightSpec } from '../native.js';
import { parseUNet2DConfig, type UNet2DConfig } from './config.js';
import { defaultFloatLayers, parseQuantization, type QuantizationEntry } from './quantization.js';
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
  /**
   * 'float32' (default for float folders); 'int8' (quantize on load; the default for a
   * quantized folder); 'bfloat16'. A quantized folder loaded as 'float32' runs its
   * dequantized weights in float32. int8 and bfloat16 run on the CPU.
   */
  dtype?: 'float32' | 'int8' | 'bfloat16';
  /**
   * With dtype 'int8' or 'bfloat16': the layers (diffusers names such as
   * "down_blocks.1.resnets.0.conv1") kept float32. Default: defaultFloatLayers(config). For a
   * quantized folder: extra layers to run float32 (dequantized).
   */
  floatLayers?: readonly string[];
  /**
   * Force a CPU kernel path (default: the best for this CPU, or FUSEDIFF_CPU). avx512_vnni
   * and avx512_bf16 use the avx512 float kernels with those ISAs' int8/bf16 kernels.
   */
  kernels?: 'avx512_bf16' | 'avx512_vnni' | 'avx512' | 'avx2' | 'generic' | 'reference';
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
  const dtype = options.dtype ?? undefined;
  if (dtype !== undefined && dtype !== 'float32' && dtype !== 'int8' && dtype !== 'bfloat16')
    throw new FusediffError('E_UNSUPPORTED', `dtype "${String(dtype)}" is not supported (use "float32", "int8" or "bfloat16")`);
  if (dtype !== undefined && dtype !== 'float32' && device !== 'cpu')
    throw new FusediffError('E_UNSUPPORTED', `dtype "${dtype}" runs on the CPU only for now (use device "cpu", or dtype "float32" on "${device}")`);
  if (typeof dir !== 'string' || dir.length === 0) throw new FusediffError('E_ARGUMENT', 'loadUNet expects a folder path');
  const layout = await locateModel(dir);
  const configPath = path.join(layout.unet, CONFIG_FILE);
  const raw = await readJsonFile(configPath);
  const config = parseUNet2DConfig(raw, configPath);
  const quantization = parseQuantization((raw as Record<string, unknown>).quantization, configPath);
  const weights = await findWeightFiles(layout, { variant: options.variant });
  const precision = precisionOptions(config, quantization, dtype, options.floatLayers);
  if (device !== 'cpu' && precision.precision !== 'float32')
    throw new FusediffError('E_UNSUPPORTED', `this folder holds int8 weights, which run on the CPU only for now: load it with dtype "float32" to run it on "${device}"`);
  const handle = await native().NativeUNet.load(config, weights, options.kernels, precision, device, options.precision);
  return new UNet(config, handle, weights, { dtype: precision.precision, quantization });
}

/** The native load's precision options for a dtype request on a (possibly quantized) folder. */
export function precisionOptions(
  config: UNet2DConfig,
  quantization: QuantizationEntry | null,
  dtype: 'float32' | 'int8' | 'bfloat16' | undefined,
  floatLayers: readonly string[] | undefined,
): { precision: 'float32' | 'int8' | 'bfloat16'; floatLayers: string[]; quantizeFloatWeights: boolean } {
  if (floatLayers !== undefined) {
    if (!Array.isArray(floatLayers) || !floatLayers.every((l) => typeof l === 'string'))
      throw new FusediffError('E_ARGUMENT', 'floatLayers must be an array of layer names');
    const known = new Set(native().NativeUNet.layers(config).map((l) => l.name));
    const unknown = floatLayers.filter((l) => !known.has(l));
    if (unknown.length > 0)
      throw new FusediffError('E_ARGUMENT', `floatLayers names ${unknown.slice(0, 3).map((l) => JSON.stringify(l)).join(', ')}${unknown.length > 3 ? ', ...' : ''}, which are not conv or linear layers of this model`);
  }
  if (quantization) {
    if (dtype === 'bfloat16')
      throw new FusediffError('E_UNSUPPORTED', 'this folder holds int8 weights (fusediff-int8); load it as "int8" (default) or "float32", or load the float model as "bfloat16"');
    return { precision: dtype ?? 'int8', floatLayers: [...(floatLayers ?? [])], quantizeFloatWeights: false };
  }
  const mode = dtype ?? 'float32';
  return { precision: mode, floatLayers: [...(floatLayers ?? defaultFloatLayers(config))], quantizeFloatWeights: true };
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
