/**
 * loadUNet(dir): a diffusers model folder (config.json + diffusion_pytorch_model.safetensors)
 * into a runnable UNet. The folder may be the UNet's own folder or a pipeline folder with a
 * `unet/` subfolder. Weight files are memory-mapped and checked tensor by tensor against
 * the shapes the config implies before anything runs.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { parsePythonJson } from '../json.js';
import { native, type WeightSpec } from '../native.js';
import { parseUNet2DConfig, type UNet2DConfig } from './config.js';
import { UNet } from './unet.js';

export interface LoadUNetOptions {
  /** 'cpu' (default). */
  device?: 'cpu';
  dtype?: 'float32';
  /** Force a CPU kernel path (default: the best for this CPU, or FUSEDIFF_CPU). */
  kernels?: 'avx512' | 'avx2' | 'generic' | 'reference';
}

const CONFIG_FILE = 'config.json';
const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
const MAX_CONFIG_BYTES = 1 << 20;

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

/** The folder holding the UNet's config.json: `dir` itself or `dir/unet`. */
export async function resolveUNetFolder(dir: string): Promise<string> {
  if (typeof dir !== 'string' || dir.length === 0) throw new FusediffError('E_ARGUMENT', 'loadUNet expects a folder path');
  if (await isFile(path.join(dir, CONFIG_FILE))) return dir;
  if (await isFile(path.join(dir, 'unet', CONFIG_FILE))) return path.join(dir, 'unet');
  throw new FusediffError('E_IO', `no ${CONFIG_FILE} in ${dir} or ${path.join(dir, 'unet')}: not a diffusers UNet folder`);
}

export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (stat.size > MAX_CONFIG_BYTES)
      throw new FusediffError('E_RESOURCE', `${file} is ${stat.size} bytes; config files are limited to ${MAX_CONFIG_BYTES}`);
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof FusediffError) throw e;
    throw new FusediffError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  return parsePythonJson(text, file);
}

export async function loadUNet(dir: string, options: LoadUNetOptions = {}): Promise<UNet> {
  if (options.device !== undefined && options.device !== 'cpu')
    throw new FusediffError('E_BACKEND_UNAVAILABLE', `device "${String(options.device)}" is not available in this build (use "cpu")`);
  if (options.dtype !== undefined && options.dtype !== 'float32')
    throw new FusediffError('E_UNSUPPORTED', `dtype "${String(options.dtype)}" is not supported yet (use "float32")`);
  const folder = await resolveUNetFolder(dir);
  const configPath = path.join(folder, CONFIG_FILE);
  const config = parseUNet2DConfig(await readJsonFile(configPath), configPath);
  const weights = path.join(folder, WEIGHTS_FILE);
  if (!(await isFile(weights)))
    throw new FusediffError('E_IO', `no ${WEIGHTS_FILE} in ${folder}`);
  const handle = await native().NativeUNet.load(config, [weights], options.kernels);
  return new UNet(config, handle, [weights]);
}

/** The weight names and shapes a config needs (diffusers names, PyTorch shapes). */
export function expectedWeights(config: UNet2DConfig): WeightSpec[] {
  return native().NativeUNet.expectedWeights(config);
}
