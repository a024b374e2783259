/**
 * INT8 and BF16 rows of `npm run bench`: per case, in one process, fusediff float32, int8
 * (quantized at load), bf16 and onnxruntime-node fp32 on the same weights and input, run in
 * rotating order each round (A/B alternation generalised to four), medians of the per-round
 * ratios; output cosine against float32; int8 load time; and, from a separate process that
 * loads only the pre-quantized folder, its load time and peak RSS, with the folder size ratio.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadUNet, quantizeUNet, runtimeInfo, Tensor, type UNet } from '../lib/index.js';
import { rng } from '../test/helpers/random-model.js';
import type { BenchCase } from './cases.js';
import { median } from './measure.js';
import { modelDir, onnxFile, WEIGHTS_DIR } from './model-files.js';
import { createSession, ort } from './ort-session.js';

export interface LowpResult {
  id: string;
  runs: number;
  medianMs: { float: number; int8: number; bf16: number; ort: number };
  ratio: { int8VsOrt: number; int8VsFloat: number; bf16VsOrt: number; bf16VsFloat: number };
  cosine: { int8: number; bf16: number };
  int8LoadOnTheFlyMs: number;
  lowpKernels: string;
}

export interface Int8FolderResult {
  id: string;
  folderRatio: number;
  loadMs: number;
  peakRssMB: number;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let d = 0, x = 0, y = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    x += a[i] * a[i];
    y += b[i] * b[i];
  }
  return d / Math.sqrt(x * y);
}

function inputs(c: BenchCase) {
  const shape = [c.batch, c.model.channels, c.model.size, c.model.size];
  const random = rng(42);
  const input = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * random() - 1);
  const timesteps = new Array<number>(c.batch).fill(c.model.timestep);
  const labels = c.model.classLabel === undefined ? undefined : new Array<number>(c.batch).fill(c.model.classLabel);
  return { shape, input, timesteps, labels };
}

export async function runLowpCase(c: BenchCase, warmup: number, runs: number): Promise<LowpResult> {
  const dir = modelDir(c.model);
  const { shape, input, timesteps, labels } = inputs(c);
  const x = Tensor.fromFloat32(input, shape);
  const opts = labels ? { classLabels: labels } : {};
  const float = await loadUNet(dir);
  const t0 = performance.now();
  const int8 = await loadUNet(dir, { dtype: 'int8' });
  const int8LoadOnTheFlyMs = performance.now() - t0;
  const bf16 = await loadUNet(dir, { dtype: 'bfloat16' });
  const session = await createSession(onnxFile(c.model), runtimeInfo().threads);
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', input, shape),
    timestep: new ort.Tensor('float32', Float32Array.from(timesteps), [c.batch]),
  };
  if (labels) feeds.class_labels = new ort.Tensor('int64', BigInt64Array.from(labels, (v) => BigInt(v)), [c.batch]);
  const outs: Record<string, Float32Array> = {};
  const ours = (name: string, u: UNet) => async () => {
    const y = await u.forward(x, timesteps, opts);
    outs[name] = await y.toFloat32Array();
    y.dispose();
  };
  const fns: [string, () => Promise<void>][] = [
    ['float', ours('float', float)],
    ['int8', ours('int8', int8)],
    ['bf16', ours('bf16', bf16)],
    ['ort', async () => void (await session.run(feeds))],
  ];
  const times: Record<string, number[]> = { float: [], int8: [], bf16: [], ort: [] };
  for (let i = 0; i < warmup + runs; i++) {
    for (let k = 0; k < fns.length; k++) {
      const [name, fn] = fns[(i + k) % fns.length];
      const s = performance.now();
      await fn();
      if (i >= warmup) times[name].push(performance.now() - s);
    }
  }
  const per = (a: string, b: string) => median(times[a].map((t, i) => t / times[b][i]));
  const result: LowpResult = {
    id: c.id,
    runs,
    medianMs: { float: median(times.float), int8: median(times.int8), bf16: median(times.bf16), ort: median(times.ort) },
    ratio: { int8VsOrt: per('int8', 'ort'), int8VsFloat: per('int8', 'float'), bf16VsOrt: per('bf16', 'ort'), bf16VsFloat: per('bf16', 'float') },
    cosine: { int8: cosine(outs.int8, outs.float), bf16: cosine(outs.bf16, outs.float) },
    int8LoadOnTheFlyMs,
    lowpKernels: int8.info.lowpKernels,
  };
  for (const u of [float, int8, bf16]) u.dispose();
  await session.release();
  x.dispose();
  return result;
}

/** Bytes of a model's UNet config and weights (its unet/ folder for a pipeline folder). */
function folderBytes(dir: string): number {
  if (existsSync(path.join(dir, 'unet', 'config.json'))) dir = path.join(dir, 'unet');
  return readdirSync(dir)
    .filter((f) => f === 'config.json' || f.endsWith('.safetensors'))
    .reduce((s, f) => s + statSync(path.join(dir, f)).size, 0);
}

/** The case model's fusediff-int8 folder, under bench/.weights/ (never beside a shipped model). */
function int8Folder(c: BenchCase): string {
  return path.join(WEIGHTS_DIR, `${c.model.id}-int8`);
}

/** Writes the case model's fusediff-int8 folder (once per model). */
export async function prepareInt8Folder(c: BenchCase): Promise<string> {
  const out = int8Folder(c);
  const r = await quantizeUNet(modelDir(c.model), { mode: 'int8', outDir: out });
  r.unet.dispose();
  return out;
}

/** In a fresh process: load the pre-quantized folder, one forward, peak RSS. */
export async function runInt8Folder(c: BenchCase): Promise<Int8FolderResult> {
  const out = int8Folder(c);
  const { shape, input, timesteps, labels } = inputs(c);
  const t0 = performance.now();
  const unet = await loadUNet(out);
  const loadMs = performance.now() - t0;
  const y = await unet.forward(Tensor.fromFloat32(input, shape), timesteps, labels ? { classLabels: labels } : {});
  await y.toFloat32Array();
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  unet.dispose();
  return {
    id: c.id,
    folderRatio: folderBytes(out) / folderBytes(modelDir(c.model)),
    loadMs,
    peakRssMB: m ? Number(m[1]) / 1024 : process.resourceUsage().maxRSS / 1024,
  };
}

export function lowpMarkdown(rows: LowpResult[], folders: Int8FolderResult[]): string {
  const f = (v: number, d = 2) => v.toFixed(d);
  const lines = [
    '| case | float ms | int8 ms | bf16 ms | ORT fp32 ms | int8/ORT | int8/float | bf16/ORT | bf16/float | cos int8 | cos bf16 | int8 folder/float | int8 load ms (folder / on the fly) | int8 peak RSS MB |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of rows) {
    const q = folders.find((x) => x.id === r.id);
    lines.push(
      `| ${r.id} | ${f(r.medianMs.float, 0)} | ${f(r.medianMs.int8, 0)} | ${f(r.medianMs.bf16, 0)} | ${f(r.medianMs.ort, 0)} | ${f(r.ratio.int8VsOrt)} | ${f(r.ratio.int8VsFloat)} | ${f(r.ratio.bf16VsOrt)} | ${f(r.ratio.bf16VsFloat)} | ${f(r.cosine.int8, 5)} | ${f(r.cosine.bf16, 6)} | ${q ? f(q.folderRatio, 3) : '-'} | ${q ? f(q.loadMs, 0) : '-'} / ${f(r.int8LoadOnTheFlyMs, 0)} | ${q ? f(q.peakRssMB, 0) : '-'} |`,
    );
  }
  return lines.join('\n');
}
