/**
 * The API inside a Node service: generate never blocks the event loop, aborts within one step
 * and frees its memory, reports progress with previews, is safe under concurrency and from
 * worker threads, and refuses use after dispose().
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FusediffError, loadPipeline, memoryStats, type Pipeline, type Progress } from '../lib/index.js';
import { ensureDist, root } from './helpers/dist.js';
import { collect } from './helpers/gc.js';

const DDIM = path.join(root, 'test/fixtures/pipelines/ddim');
let pipe: Pipeline;

beforeAll(async () => {
  ensureDist(); // the worker imports the built package
  pipe = await loadPipeline(DDIM);
}, 300_000);
afterAll(() => pipe.dispose());

const bytes = (r: { images: { data: Uint8ClampedArray }[] }) => r.images.map((i) => Buffer.from(i.data).toString('base64'));

it('generate never blocks the event loop', async () => {
  let last = performance.now();
  let maxGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  await pipe.generate({ batchSize: 32, steps: 20, seed: 1 });
  const took = performance.now() - started;
  clearInterval(timer);
  console.log(`generate ${took.toFixed(0)} ms, longest event-loop gap ${maxGap.toFixed(1)} ms`);
  expect(took).toBeGreaterThan(50); // long enough for the measurement to mean something (~300 ms here when idle)
  expect(maxGap).toBeLessThan(200);
});

describe('AbortSignal', () => {
  it('stops within one step with E_ABORTED and frees the run’s memory', async () => {
    await pipe.generate({ batchSize: 4, steps: 2, seed: 0 }); // warm the batch-4 activation arena before the baseline
    await collect();
    const baseline = memoryStats().liveBytes;
    const ac = new AbortController();
    const seen: number[] = [];
    const run = pipe.generate({
      batchSize: 4,
      steps: 10,
      seed: 3,
      signal: ac.signal,
      onProgress: (p) => {
        seen.push(p.step);
        if (p.step === 3) ac.abort('client went away');
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'E_ABORTED' });
    expect(seen).toEqual([1, 2, 3]);
    await collect();
    expect(memoryStats().liveBytes).toBe(baseline);
  });

  it('an abort during a forward ends the run after that step', async () => {
    const ac = new AbortController();
    let steps = 0;
    const run = pipe.generate({ batchSize: 4, steps: 50, seed: 3, signal: ac.signal, onProgress: () => steps++ });
    setTimeout(() => ac.abort(), 30);
    await expect(run).rejects.toBeInstanceOf(FusediffError);
    const at = steps;
    expect(at).toBeLessThan(50);
    // Nothing runs on after the rejection.
    await new Promise((r) => setTimeout(r, 100));
    expect(steps).toBe(at);
  });

  it('an already-aborted signal rejects at once', async () => {
    await expect(pipe.generate({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'E_ABORTED' });
  });
});

it('onProgress gives elapsed time and predicted-clean previews every previewEvery steps', async () => {
  for (const sampler of ['ddim', 'pf-ode'] as const) {
    const seen: Progress[] = [];
    const res = await pipe.generate({ batchSize: 2, steps: 5, seed: 9, sampler, previewEvery: 2, onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5]);
    expect(seen.every((p, i) => p.totalSteps === 5 && p.elapsedMs >= (seen[i - 1]?.elapsedMs ?? 0))).toBe(true);
    expect(seen.filter((p) => p.preview).map((p) => p.step)).toEqual([2, 4, 5]);
    const last = seen[4].preview!;
    expect(last).toHaveLength(2);
    expect(last[0]).toMatchObject({ width: 16, height: 16, channels: 3 });
    // The last step's prediction is (nearly) the result.
    let diff = 0;
    for (let i = 0; i < last[0].data.length; i++) diff += Math.abs(last[0].data[i] - res.images[0].data[i]);
    expect(diff / last[0].data.length, sampler).toBeLessThan(sampler === 'ddim' ? 1 : 64);
  }
  await expect(pipe.generate({ steps: 2, previewEvery: 0, onProgress: () => {} })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
});

it('concurrent generates on one model give the sequential images', async () => {
  const opts = [11, 22, 33, 44].map((seed) => ({ batchSize: 2, steps: 6, seed }));
  const sequential = [];
  for (const o of opts) sequential.push(bytes(await pipe.generate(o)));
  const concurrent = await Promise.all(opts.map((o) => pipe.generate(o)));
  expect(concurrent.map(bytes)).toEqual(sequential);
});

it('loads and generates inside a worker thread, with the main thread’s images', async () => {
  const code = `
    import { parentPort, workerData } from 'node:worker_threads';
    const { loadPipeline } = await import(workerData.dist);
    const pipe = await loadPipeline(workerData.model);
    const res = await pipe.generate({ batchSize: 3, steps: 6, seed: 5 });
    parentPort.postMessage(res.images.map((i) => Buffer.from(i.data).toString('base64')));
    pipe.dispose();`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), {
    workerData: { dist: new URL(`file://${path.join(root, 'dist/index.js')}`).href, model: DDIM },
  });
  const fromWorker = await new Promise<string[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  expect(fromWorker).toEqual(bytes(await pipe.generate({ batchSize: 3, steps: 6, seed: 5 })));
});

it('a disposed pipeline or model refuses further use with E_DISPOSED', async () => {
  const p = await loadPipeline(DDIM);
  const unet = p.unet;
  p.dispose();
  await expect(p.generate({ steps: 2 })).rejects.toMatchObject({ code: 'E_DISPOSED' });
  expect(() => unet.info).toThrow(/E_DISPOSED/);
  p.dispose(); // twice is fine
});
