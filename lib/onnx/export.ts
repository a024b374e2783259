/**
 * UNet -> .onnx file: validates the options, builds the graph from the plan and the weights,
 * encodes the ModelProto and writes it. Used by UNet.exportOnnx() and the export-onnx command.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { packageRoot, type PlanDescription } from '../native.js';
import { encodeModel } from './onnx-proto.js';
import { buildUNetGraph, INPUT_CLASS_LABELS, OUTPUT_SAMPLE } from './unet-graph.js';
import { WeightReader } from './weights.js';
import { writeChunks } from './write-file.js';

export interface ExportOnnxOptions {
  /**
   * ONNX opset of the default domain, 15 to 21 (default 17). The graph uses the same
   * operators at every opset in that range: Shape with `start` needs 15.
   */
  opset?: number;
}

export interface ExportOnnxResult {
  /** Absolute path of the written model. */
  path: string;
  opset: number;
  irVersion: number;
  bytes: number;
  nodes: number;
  /** Graph input names, in order: sample, timestep[, class_labels]. */
  inputs: string[];
  output: string;
}

/** What exportUNetOnnx needs of a UNet (kept structural so this file does not import unet.ts). */
export interface ExportableUNet {
  readonly config: Readonly<object>;
  readonly weightFiles: readonly string[];
  describePlan(): PlanDescription;
}

export const DEFAULT_OPSET = 17;
const MIN_OPSET = 15;
const MAX_OPSET = 21;
/** protobuf messages are limited to 2 GiB - 1 (a signed 32-bit length). */
const MAX_PROTO_BYTES = 2 ** 31 - 1;

/** The IR version that introduced each opset (onnx/docs/Versioning.md): the lowest a runtime must accept. */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

export async function exportUNetOnnx(unet: ExportableUNet, file: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  if (typeof file !== 'string' || file.length === 0) throw new FusediffError('E_ARGUMENT', 'exportOnnx expects an output file path');
  const opset = options.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset)) throw new FusediffError('E_ARGUMENT', `opset must be an integer, got ${String(opset)}`);
  if (opset < MIN_OPSET || opset > MAX_OPSET)
    throw new FusediffError('E_UNSUPPORTED', `ONNX opset ${opset} is not supported for export; use ${MIN_OPSET} to ${MAX_OPSET}`);
  // raw_data is little-endian by definition; the writer passes the host's float bytes through.
  if (os.endianness() !== 'LE') throw new FusediffError('E_UNSUPPORTED', 'ONNX export needs a little-endian host');

  const plan = unet.describePlan();
  const weights = new WeightReader(unet.weightFiles);
  let graph;
  try {
    graph = buildUNetGraph(plan, weights, 'fusediff_unet2d');
  } finally {
    weights.close();
  }
  const model = encodeModel({
    irVersion: irVersionFor(opset),
    opsetVersion: opset,
    producerName: 'fusediff',
    producerVersion: packageVersion(),
    doc:
      'diffusers UNet2DModel exported by fusediff from its execution plan. Inputs: sample [N, C, H, W] float32, ' +
      'timestep [N] float32' +
      (graph.inputs.length > 2 ? `, ${INPUT_CLASS_LABELS} (see the input's doc)` : '') +
      `; output ${OUTPUT_SAMPLE} [N, C_out, H, W]. H and W must be multiples of 2^${plan.numDownsamples}.`,
    metadata: { 'diffusers.config': JSON.stringify(unet.config) },
    graph,
  });
  if (model.length > MAX_PROTO_BYTES)
    throw new FusediffError(
      'E_UNSUPPORTED',
      `the ONNX model would be ${model.length} bytes; protobuf files are limited to 2 GiB (external weight data is not implemented)`,
    );
  const bytes = await writeChunks(file, model.chunks);
  return {
    path: path.resolve(file),
    opset,
    irVersion: irVersionFor(opset),
    bytes,
    nodes: graph.nodes.length,
    inputs: graph.inputs.map((i) => i.name),
    output: OUTPUT_SAMPLE,
  };
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
