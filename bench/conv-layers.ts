/**
 * Per-layer micro-benchmark of single 3x3 convolutions at the shapes that dominate a model.
 *
 * - fusediff: the kernel table's conv2d on NHWC data through the dev hook
 *   native/binding/bench_hook.cpp (packs the weights, runs one untimed conv, then times one
 *   conv natively; bias epilogue).
 * - onnxruntime: a graph of CHAIN identical Conv nodes (same weights), time / CHAIN. A single
 *   Conv node would also time ORT's NCHW <-> NCHWc reorders and the per-run overhead, which
 *   in a whole U-Net are paid once, not per layer; the chain amortizes them.
 * The two alternate per iteration, like the whole-forward benchmark.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { native } from '../lib/native.js';
import { GraphBuilder } from '../lib/onnx/graph-builder.js';
import { DataType, encodeModel } from '../lib/onnx/onnx-proto.js';
import { writeChunks } from '../lib/onnx/write-file.js';
import { describeShape, type ConvShape } from './flops.js';
import { alternate, median } from './measure.js';
import { createSession, ort } from './ort-session.js';

const CHAIN = 8;

export interface LayerResult {
  layer: string;
  batch: number;
  flops: number;
  oursSeconds: number;
  ortSeconds: number;
}

async function writeConvChain(file: string, s: ConvShape): Promise<void> {
  if (s.inChannels !== s.outChannels || s.stride !== 1) throw new Error(`conv chain needs a C->C stride-1 conv, got ${describeShape(s)}`);
  const g = new GraphBuilder();
  const x = g.reserve('x');
  const c = s.inChannels;
  const w = new Float32Array(c * c * 9).map((_, i) => 0.05 * Math.sin(i * 0.7));
  const b = new Float32Array(c).map((_, i) => 0.01 * Math.cos(i));
  const wName = g.weight('w', [c, c, 3, 3], w);
  const bName = g.weight('b', [c], b);
  let y = x;
  for (let i = 0; i < CHAIN; i++) y = g.op('Conv', [y, wName, bName], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] });
  const out = g.renameValue(y, 'y');
  const dims = ['n', c, 'h', 'w'];
  const graph = g.build('conv_chain', [{ name: x, elemType: DataType.FLOAT, dims }], [{ name: out, elemType: DataType.FLOAT, dims }]);
  const model = encodeModel({ irVersion: 8, opsetVersion: 17, producerName: 'fusediff-bench', producerVersion: '0', graph });
  await writeChunks(file, model.chunks);
}

export async function benchConvLayer(
  s: ConvShape,
  batch: number,
  options: { dir: string; threads: number; warmup: number; runs: number },
): Promise<LayerResult> {
  mkdirSync(options.dir, { recursive: true });
  const file = path.join(options.dir, `conv3x3_${s.inChannels}_${s.height}x${s.width}.onnx`);
  await writeConvChain(file, s);
  const session = await createSession(file, options.threads);
  const shape = [batch, s.inChannels, s.height, s.width];
  const input = new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i)), shape);
  const addon = native();
  const hookSeconds: number[] = [];
  const ours = async () => {
    const r = await addon.benchConv2d({
      batch,
      height: s.height,
      width: s.width,
      inChannels: s.inChannels,
      outChannels: s.outChannels,
      kernel: 3,
      stride: 1,
      iterations: 1,
      warmup: 1, // the fresh buffers' first touch (page faults) stays out of the timed call
    });
    hookSeconds.push(r.seconds[0]);
  };
  const theirs = async () => {
    await session.run({ x: input });
  };
  const r = await alternate(ours, theirs, { warmup: options.warmup, runs: options.runs });
  await session.release();
  const kept = hookSeconds.slice(hookSeconds.length - options.runs);
  const flops = 2 * batch * s.height * s.width * s.inChannels * s.outChannels * 9;
  return { layer: describeShape(s), batch, flops, oursSeconds: median(kept), ortSeconds: median(r.b.times) / CHAIN };
}
