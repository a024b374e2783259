/**
 * One benchmark case, measured in one process (a child of bench/run.ts, so each case's peak
 * RSS is its own): fusediff and onnxruntime-node load the same weights, run the same input,
 * alternate per iteration; then the case's dominant 3x3 conv layers are timed alone.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadUNet, runtimeInfo, Tensor } from '../lib/index.js';
import { rng } from '../test/helpers/random-model.js';
import type { BenchCase } from './cases.js';
import { benchConvLayer, type LayerResult } from './conv-layers.js';
import { convTimeSum } from './conv-sum.js';
import { countFlops } from './flops.js';
import { alternate, LoopLagMonitor, median, quantile } from './measure.js';
import { modelDir, onnxFile, WEIGHTS_DIR } from './model-files.js';
import { createSession, ort } from './ort-session.js';
import { startTorchPeer } from './torch-peer.js';

export interface RuntimeResult {
  medianSeconds: number;
  q1Seconds: number;
  q3Seconds: number;
  times: number[];
  maxLagMs: number;
  /** Median over the watched runs of each run's max event-loop delay, ms (maxLagMs: their max). */
  medianLagMs: number;
  /** RSS growth from loading the model and its first forward, MB. */
  rssGrowthMB: number;
}

/** PyTorch (bench/torch_peer.py), alternated with fusediff after the ORT runs. */
export interface TorchResult {
  version: string;
  medianSeconds: number;
  q1Seconds: number;
  q3Seconds: number;
  /** fusediff's median in the same alternation, and the median of the pair ratios ours/PyTorch. */
  oursMedianSeconds: number;
  pairRatio: number;
  /** max|torch - ours| / max|ours| on the benchmark input. */
  relativeError: number;
}

export interface CaseResult {
  id: string;
  hub: string;
  batch: number;
  size: number;
  channels: number;
  threads: number;
  kernels: string;
  flops: number;
  conv3x3Flops: number;
  ours: RuntimeResult;
  ort: RuntimeResult;
  pairRatio: { median: number; q1: number; q3: number };
  /** (q3 - q1) / median of each runtime's times: the run-to-run noise. */
  spread: { ours: number; ort: number };
  peakRssMB: number;
  /** max|ort - ours| / max|ours| on the benchmark input (the two must compute the same thing). */
  relativeError: number;
  /** null where the PyTorch peer did not run (BENCH_TORCH=0, or no python3-torch). */
  torch: TorchResult | null;
  /** Sum over the plan's convolutions, each timed alone (fusediff kernels); null when skipped. */
  convSumSeconds: number | null;
  layers: LayerResult[];
}

export interface CaseOptions {
  warmup: number;
  runs: number;
  layerRuns: number;
  layers: number;
  /** Time every conv of the plan alone (0 = skip). */
  breakdownRuns: number;
  log: (line: string) => void;
}

const MB = 1024 * 1024;

/**
 * This process's peak RSS in bytes. On Linux, VmHWM of /proc/self/status: getrusage's
 * ru_maxrss survives exec, so a child would report its parent's footprint at spawn time.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

export async function runCase(c: BenchCase, options: CaseOptions): Promise<CaseResult> {
  const { model, batch } = c;
  const log = options.log;
  const dir = modelDir(model);
  const threads = runtimeInfo().threads;
  const shape = [batch, model.channels, model.size, model.size];
  const random = rng(42);
  const input = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * random() - 1);
  const timesteps = new Array<number>(batch).fill(model.timestep);
  const labels = model.classLabel === undefined ? undefined : new Array<number>(batch).fill(model.classLabel);

  const rss0 = process.memoryUsage().rss;
  const unet = await loadUNet(dir);
  const x = Tensor.fromFloat32(input, shape);
  const forwardOptions = labels ? { classLabels: labels } : {};
  let oursOut: Float32Array = new Float32Array(0);
  const ours = async () => {
    const y = await unet.forward(x, timesteps, forwardOptions);
    oursOut = await y.toFloat32Array();
    y.dispose();
  };
  await ours();
  const relativeTo = (other: Float32Array) => {
    let maxDiff = 0;
    let maxOurs = 0;
    for (let i = 0; i < oursOut.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(oursOut[i] - other[i]));
      maxOurs = Math.max(maxOurs, Math.abs(oursOut[i]));
    }
    return maxDiff / maxOurs;
  };
  const runTorchPeer = async (): Promise<TorchResult | null> => {
    const peer = await startTorchPeer({
      modelDir: dir,
      input,
      shape,
      timestep: model.timestep,
      classLabel: model.classLabel,
      threads,
      scratchDir: path.dirname(onnxFile(model)),
      log,
    });
    if (!peer) return null;
    try {
      log(`${c.id}: PyTorch ${peer.version}: ${options.warmup} warm-up + ${options.runs} timed runs each, alternating with fusediff`);
      const t = await alternate(ours, () => peer.run(), { warmup: options.warmup, runs: options.runs });
      return {
        version: peer.version,
        medianSeconds: median(t.b.times),
        q1Seconds: quantile(t.b.times, 0.25),
        q3Seconds: quantile(t.b.times, 0.75),
        oursMedianSeconds: median(t.a.times),
        pairRatio: median(t.pairRatios),
        relativeError: relativeTo(peer.output),
      };
    } finally {
      peer.close();
    }
  };
  const rss1 = process.memoryUsage().rss;

  const session = await createSession(onnxFile(model), threads);
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', input, shape),
    timestep: new ort.Tensor('float32', Float32Array.from(timesteps), [batch]),
  };
  if (labels) feeds.class_labels = new ort.Tensor('int64', BigInt64Array.from(labels, (v) => BigInt(v)), [batch]);
  let ortOut: Float32Array = new Float32Array(0);
  const theirs = async () => {
    ortOut = (await session.run(feeds)).out_sample.data as Float32Array;
  };
  await theirs();
  const rss2 = process.memoryUsage().rss;
  const ortError = relativeTo(ortOut);

  log(`${c.id}: ${options.warmup} warm-up + ${options.runs} timed runs each, alternating`);
  const r = await alternate(ours, theirs, { warmup: options.warmup, runs: options.runs });
  // Loop lag in runs of their own: a watched run is not a fair timing (measure.ts).
  const lagRuns = Math.max(5, Math.ceil(options.runs / 2));
  log(`${c.id}: ${lagRuns} runs each watched for event-loop lag`);
  const monitor = new LoopLagMonitor();
  monitor.start();
  const watched = await alternate(ours, theirs, { warmup: 0, runs: lagRuns, monitor });
  monitor.stop();

  const torch = await runTorchPeer();
  const peakRssBytes = peakRss(); // before the layer benchmarks add their own buffers

  const plan = unet.describePlan();
  const flops = countFlops(plan, batch, model.size, model.size);
  const kernels = unet.info.kernels;
  unet.dispose();
  let convSumSeconds: number | null = null;
  if (options.breakdownRuns > 0) {
    log(`${c.id}: timing each of the plan's convolutions alone`);
    convSumSeconds = await convTimeSum(plan, batch, model.size, model.size, options.breakdownRuns);
  }
  x.dispose();
  await session.release();

  const layers: LayerResult[] = [];
  const shapes = flops.conv3x3Shapes.filter((s) => s.shape.stride === 1 && s.shape.inChannels === s.shape.outChannels).slice(0, options.layers);
  for (const s of shapes) {
    log(`${c.id}: layer ${s.shape.inChannels}@${s.shape.height}x${s.shape.width}`);
    layers.push(
      await benchConvLayer(s.shape, batch, { dir: path.join(WEIGHTS_DIR, 'layers'), threads, warmup: 2, runs: options.layerRuns }),
    );
  }

  const series = (times: number[], lagsMs: number[], rssGrowth: number): RuntimeResult => ({
    medianSeconds: median(times),
    q1Seconds: quantile(times, 0.25),
    q3Seconds: quantile(times, 0.75),
    times,
    maxLagMs: Math.max(...lagsMs),
    medianLagMs: median(lagsMs),
    rssGrowthMB: rssGrowth / MB,
  });
  return {
    id: c.id,
    hub: model.hub,
    batch,
    size: model.size,
    channels: model.channels,
    threads,
    kernels,
    flops: flops.total,
    conv3x3Flops: flops.conv3x3,
    ours: series(r.a.times, watched.a.lagsMs, rss1 - rss0),
    ort: series(r.b.times, watched.b.lagsMs, rss2 - rss1),
    pairRatio: { median: median(r.pairRatios), q1: quantile(r.pairRatios, 0.25), q3: quantile(r.pairRatios, 0.75) },
    spread: {
      ours: (quantile(r.a.times, 0.75) - quantile(r.a.times, 0.25)) / median(r.a.times),
      ort: (quantile(r.b.times, 0.75) - quantile(r.b.times, 0.25)) / median(r.b.times),
    },
    peakRssMB: peakRssBytes / MB,
    relativeError: ortError,
    torch,
    convSumSeconds,
    layers,
  };
}
