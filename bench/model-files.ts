/**
 * Real-size model files for the benchmark, made at bench time in bench/.weights/ (gitignored,
 * never committed): seeded random weights in the diffusers layout, written by the same
 * generator the tests use, and the ONNX export of the loaded model. Weights are reused when a
 * stamp says they were made from the same config and seed; the ONNX file is always re-exported
 * so it reflects the current exporter.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadUNet } from '../lib/index.js';
import { writeRandomModel } from '../test/helpers/random-model.js';
import type { BenchModel } from './cases.js';

export const WEIGHTS_DIR = path.resolve(process.cwd(), 'bench', '.weights');

export interface ModelFiles {
  dir: string;
  onnx: string;
}

/** The model's folder: a shipped one, or its generated weights under bench/.weights/. */
export function modelDir(model: BenchModel): string {
  return model.folder ?? path.join(WEIGHTS_DIR, model.id);
}

/** Its ONNX export, always under bench/.weights/. */
export function onnxFile(model: BenchModel): string {
  return path.join(WEIGHTS_DIR, model.id, 'model.onnx');
}

export async function prepareModel(model: BenchModel, log: (line: string) => void): Promise<ModelFiles> {
  const dir = modelDir(model);
  if (model.generate) {
    const { config, seed } = model.generate;
    const stampFile = path.join(dir, 'stamp.json');
    const stamp = JSON.stringify({ generator: 'test/helpers/random-model.ts', seed, config });
    const weights = path.join(dir, 'diffusion_pytorch_model.safetensors');
    if (!existsSync(weights) || !existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
      log(`generating ${model.hub} weights (seed ${seed}) in ${path.relative(process.cwd(), dir)}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      writeRandomModel(dir, config, seed);
      writeFileSync(stampFile, stamp);
    }
  }
  const onnx = onnxFile(model);
  mkdirSync(path.dirname(onnx), { recursive: true });
  const t0 = performance.now();
  const unet = await loadUNet(dir);
  try {
    const r = await unet.exportOnnx(onnx);
    log(`exported ${path.relative(process.cwd(), onnx)} (${(r.bytes / 1e6).toFixed(0)} MB, ${r.nodes} nodes) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } finally {
    unet.dispose();
  }
  return { dir, onnx };
}
