/**
 * quantizeUNet: a float UNet2DModel to fusediff-int8 (format and policy in quantization.ts),
 * written as a diffusers-layout folder and loaded back.
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_FILE, locateModel, MODEL_INDEX_FILE, SCHEDULER_CONFIG_FILE, type ModelLayout } from '../checkpoint/layout.js';
import { findWeightFiles } from '../checkpoint/weights.js';
import { FusediffError } from '../errors.js';
import { readJsonFile } from '../json.js';
import { native } from '../native.js';
import type { Tensor } from '../tensor.js';
import { parseUNet2DConfig, type UNet2DConfig } from './config.js';
import { loadUNet, precisionOptions } from './load.js';
import {
  ACTIVATION_SCHEME,
  defaultFloatLayers,
  parseQuantization,
  QUANTIZATION_FORMAT,
  QUANTIZATION_VERSION,
  WEIGHT_SCHEME,
  type QuantizationEntry,
} from './quantization.js';
import { UNet, type ForwardOptions } from './unet.js';

export const QUANTIZED_WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';

export interface CalibrationInput {
  sample: Tensor;
  timestep: number | readonly number[];
  options?: ForwardOptions;
}

export interface QuantizeOptions {
  mode: 'int8';
  /**
   * Write the quantized model here: config.json (with its "quantization" entry) and
   * diffusion_pytorch_model.safetensors; a pipeline source gives a pipeline folder
   * (model_index.json, scheduler/, unet/), a model folder its scheduler_config.json too.
   * Without it the quantized model is only returned.
   */
  outDir?: string;
  /** Layers kept float32, replacing the default policy's list (defaultFloatLayers). */
  floatLayers?: readonly string[];
  /**
   * Layers whose weight quantization error ||w - q·scale|| / ||w|| exceeds this stay float
   * (default 0.05; real and random weights are near 0.005–0.02; a layer far above has outliers
   * that per-channel int8 cannot hold).
   */
  maxWeightError?: number;
  /**
   * Inputs at which the quantized model's output must stay within minCosine (default 0.995) of
   * the float model's. While it does not, the int8 layers with the largest weight error are
   * moved back to float, a tenth of them (at least one) per round, for at most `maxRounds`
   * rounds (default 8).
   */
  calibration?: { inputs: readonly CalibrationInput[]; minCosine?: number; maxRounds?: number };
}

export interface QuantizedLayerReport {
  name: string;
  int8: boolean;
  relativeError: number;
}

export interface QuantizeResult {
  /** The quantized model, loaded (dispose it when done). */
  unet: UNet;
  layers: QuantizedLayerReport[];
  /** The layers kept float32 (the config.json entry). */
  floatLayers: string[];
  /** Worst cosine over the calibration inputs, and the layers calibration moved to float. */
  calibration?: { cosine: number; reverted: string[] };
  /** The folder written (outDir), and the bytes of its weight file. */
  outDir?: string;
  weightBytes: number;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let x = 0;
  let y = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    x += a[i] * a[i];
    y += b[i] * b[i];
  }
  return x === 0 && y === 0 ? 1 : d / Math.sqrt(x * y);
}

interface Source {
  config: UNet2DConfig;
  rawConfig: Record<string, unknown>;
  weights: string[];
  layout: ModelLayout | null;
  dir: string | null;
}

async function openSource(source: UNet | string): Promise<Source> {
  if (source instanceof UNet) {
    if (source.info.quantization) throw new FusediffError('E_ARGUMENT', 'this UNet is already quantized');
    return { config: { ...source.config }, rawConfig: { ...source.config }, weights: [...source.weightFiles], layout: null, dir: null };
  }
  if (typeof source !== 'string' || source.length === 0) throw new FusediffError('E_ARGUMENT', 'quantizeUNet expects a UNet or a model folder');
  const layout = await locateModel(source);
  const configPath = path.join(layout.unet, CONFIG_FILE);
  const raw = (await readJsonFile(configPath)) as Record<string, unknown>;
  const config = parseUNet2DConfig(raw, configPath);
  if (parseQuantization(raw.quantization, configPath)) throw new FusediffError('E_ARGUMENT', `${source} is already quantized (${QUANTIZATION_FORMAT})`);
  return { config, rawConfig: raw, weights: await findWeightFiles(layout), layout, dir: source };
}

async function forwardAll(unet: UNet, inputs: readonly CalibrationInput[]): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const input of inputs) {
    const y = await unet.forward(input.sample, input.timestep as number | number[], input.options ?? {});
    out.push(await y.toFloat32Array());
    y.dispose();
  }
  return out;
}

export async function quantizeUNet(source: UNet | string, options: QuantizeOptions): Promise<QuantizeResult> {
  if (!options || options.mode !== 'int8') throw new FusediffError('E_UNSUPPORTED', `quantizeUNet mode ${JSON.stringify(options?.mode)} (supported: "int8")`);
  const maxWeightError = options.maxWeightError ?? 0.05;
  if (!(maxWeightError > 0)) throw new FusediffError('E_ARGUMENT', 'maxWeightError must be a number > 0');
  const src = await openSource(source);
  const layers = native().NativeUNet.layers(src.config);
  const groupOf = new Map(layers.map((l) => [l.name, l.group.length > 0 ? l.group : [l.name]]));
  // Validates the names (E_ARGUMENT for unknown ones).
  const floats = new Set(precisionOptions(src.config, null, 'int8', options.floatLayers ?? defaultFloatLayers(src.config)).floatLayers);
  const keepFloat = (name: string) => {
    for (const member of groupOf.get(name) ?? [name]) floats.add(member);
  };

  const outDir = options.outDir === undefined ? null : path.resolve(options.outDir);
  const workDir = await fs.mkdtemp(path.join(os.tmpdir(), 'fusediff-quantize-'));
  try {
    const scratchWeights = path.join(workDir, QUANTIZED_WEIGHTS_FILE);
    let report = await native().NativeUNet.quantize(src.config, src.weights, scratchWeights, [...floats]);
    // Weight-error policy: layers (with their groups) whose int8 weights are too far off.
    const tooFar = report.layers.filter((l) => l.int8 && l.relativeError > maxWeightError);
    for (const l of tooFar) keepFloat(l.name);

    let calibration: QuantizeResult['calibration'];
    if (options.calibration) {
      const { inputs, minCosine = 0.995, maxRounds = 8 } = options.calibration;
      if (!Array.isArray(inputs) || inputs.length === 0) throw new FusediffError('E_ARGUMENT', 'calibration.inputs must be a non-empty array');
      if (typeof minCosine !== 'number' || !(minCosine > -1 && minCosine <= 1))
        throw new FusediffError('E_ARGUMENT', `calibration.minCosine must be a number in (-1, 1], got ${String(minCosine)}`);
      if (!Number.isInteger(maxRounds) || maxRounds < 0)
        throw new FusediffError('E_ARGUMENT', `calibration.maxRounds must be an integer >= 0, got ${String(maxRounds)}`);
      const reference = await native().NativeUNet.load(src.config, src.weights, undefined, { precision: 'float32', floatLayers: [], quantizeFloatWeights: false });
      const floatUNet = new UNet(src.config, reference, src.weights);
      const expected = await forwardAll(floatUNet, inputs);
      floatUNet.dispose();
      const reverted: string[] = [];
      let worst = -1;
      for (let round = 0; ; round++) {
        const handle = await native().NativeUNet.load(src.config, src.weights, undefined, { precision: 'int8', floatLayers: [...floats], quantizeFloatWeights: true });
        const candidate = new UNet(src.config, handle, src.weights);
        const got = await forwardAll(candidate, inputs);
        candidate.dispose();
        worst = Math.min(...got.map((g, i) => cosine(g, expected[i])));
        if (worst >= minCosine || round >= maxRounds) break;
        const remaining = report.layers.filter((l) => !floats.has(l.name)).sort((a, b) => b.relativeError - a.relativeError);
        if (remaining.length === 0) break;
        for (const l of remaining.slice(0, Math.max(1, Math.ceil(remaining.length / 10)))) {
          keepFloat(l.name);
          reverted.push(l.name);
        }
      }
      calibration = { cosine: worst, reverted };
    }
    if (tooFar.length > 0 || (calibration && calibration.reverted.length > 0))
      report = await native().NativeUNet.quantize(src.config, src.weights, scratchWeights, [...floats]);

    const floatLayers = layers.map((l) => l.name).filter((n) => floats.has(n));
    const entry: QuantizationEntry = {
      format: QUANTIZATION_FORMAT,
      version: QUANTIZATION_VERSION,
      weights: WEIGHT_SCHEME,
      activations: ACTIVATION_SCHEME,
      float_layers: floatLayers,
    };
    const configJson = JSON.stringify({ ...src.rawConfig, quantization: entry }, null, 2) + '\n';
    let unet: UNet;
    if (outDir) {
      unet = await loadUNet(await writeFolder(outDir, src, configJson, scratchWeights), { dtype: 'int8' });
    } else {
      // No folder to keep: quantize the source weights at load with the same layers kept float
      // (the same numbers as the folder would give), so the model refers to files that stay.
      const handle = await native().NativeUNet.load(src.config, src.weights, undefined, { precision: 'int8', floatLayers: [...floatLayers], quantizeFloatWeights: true });
      unet = new UNet(src.config, handle, src.weights, { dtype: 'int8', quantization: entry });
    }
    return {
      unet,
      layers: report.layers.map((l) => ({ name: l.name, int8: l.int8, relativeError: l.relativeError })),
      floatLayers,
      calibration,
      outDir: outDir ?? undefined,
      weightBytes: report.bytes,
    };
  } finally {
    await fs.rm(workDir, { recursive: true, force: true });
  }
}

/** Lays out the quantized model like its source; returns the folder holding the UNet. */
async function writeFolder(outDir: string, src: Source, configJson: string, weights: string): Promise<string> {
  if (src.dir && path.resolve(src.dir) === outDir) throw new FusediffError('E_ARGUMENT', 'the output folder must differ from the model folder');
  await fs.mkdir(outDir, { recursive: true });
  let unetDir = outDir;
  const layout = src.layout;
  if (layout?.kind === 'pipeline' && layout.modelIndex) {
    await fs.copyFile(layout.modelIndex, path.join(outDir, MODEL_INDEX_FILE));
    if (layout.schedulerConfig) {
      await fs.mkdir(path.join(outDir, 'scheduler'), { recursive: true });
      await fs.copyFile(layout.schedulerConfig, path.join(outDir, 'scheduler', SCHEDULER_CONFIG_FILE));
    }
    unetDir = path.join(outDir, 'unet');
    await fs.mkdir(unetDir, { recursive: true });
  } else if (layout?.kind === 'model' && layout.schedulerConfig) {
    await fs.copyFile(layout.schedulerConfig, path.join(outDir, SCHEDULER_CONFIG_FILE));
  }
  await fs.writeFile(path.join(unetDir, CONFIG_FILE), configJson);
  await fs.copyFile(weights, path.join(unetDir, QUANTIZED_WEIGHTS_FILE));
  return unetDir;
}
