/**
 * Reliability of whole generations: 200 generations in one process leak nothing, and 32
 * concurrent generations on one model — some aborted at random steps, some with invalid
 * arguments — leave the others with exactly the images sequential runs give, free the
 * aborted ones' memory, and leave the process healthy.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FusediffError, loadPipeline, memoryStats, type GenerateOptions, type Pipeline } from '../lib/index.js';
import { collect } from './helpers/gc.js';
import { rng } from './helpers/random-model.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-generate-'));
let pipe: Pipeline;

beforeAll(async () => {
  const fixtures = path.join(__dirname, 'fixtures/diffusers');
  cpSync(path.join(fixtures, 'models/unet_basic'), path.join(tmp, 'unet'), { recursive: true });
  cpSync(path.join(fixtures, 'e2e/ddim10_unet_basic/scheduler_config.json'), path.join(tmp, 'scheduler/scheduler_config.json'));
  writeFileSync(path.join(tmp, 'model_index.json'), JSON.stringify({ _class_name: 'DDIMPipeline', unet: ['diffusers', 'UNet2DModel'], scheduler: ['diffusers', 'DDIMScheduler'] }));
  pipe = await loadPipeline(tmp);
});
afterAll(() => {
  pipe.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

const bytes = (r: { images: { data: Uint8ClampedArray }[] }) => Buffer.concat(r.images.map((i) => Buffer.from(i.data)));

it('200 generations: RSS grows < 5% after warm-up and engine memory returns to its level', async () => {
  const run = async (n: number) => {
    for (let i = 0; i < n; i++) await pipe.generate({ batchSize: 1, steps: 4, seed: i, height: 16, width: 16 });
    await collect();
  };
  await run(40);
  const rss = process.memoryUsage().rss;
  const engine = memoryStats().liveBytes;
  // 5 rounds of 40; the median RSS after a round is compared, so that one swing of V8's
  // committed heap (+-2 MiB around 64 MiB here) does not pass for a leak, while steady growth would.
  const samples: number[] = [];
  for (let r = 0; r < 5; r++) {
    await run(40);
    samples.push(process.memoryUsage().rss);
  }
  samples.sort((a, b) => a - b);
  expect(memoryStats().liveBytes).toBe(engine);
  expect(samples[2] / rss).toBeLessThan(1.05);
  expect(samples[4] / rss).toBeLessThan(1.1);
});

it('32 concurrent generations with aborts and bad arguments', async () => {
  const random = rng(99);
  pipe.unet.releaseCachedMemory();
  const base = memoryStats().liveBytes;
  type Job = { kind: 'ok' | 'abort' | 'invalid'; options: GenerateOptions; abortAt?: number };
  const jobs: Job[] = Array.from({ length: 32 }, (_, i) => {
    const options: GenerateOptions = { batchSize: 1 + (i % 3), steps: 6, seed: 1000 + i, height: 16, width: 16 };
    const pick = random();
    if (pick < 0.25) return { kind: 'invalid', options: { ...options, steps: i % 2 ? -3 : 1e9, classLabels: i % 2 ? [7] : undefined } };
    if (pick < 0.5) return { kind: 'abort', options, abortAt: 1 + Math.floor(random() * 5) };
    return { kind: 'ok', options };
  });
  expect(jobs.filter((j) => j.kind === 'abort').length).toBeGreaterThan(2);
  expect(jobs.filter((j) => j.kind === 'invalid').length).toBeGreaterThan(2);

  const outcomes = await Promise.allSettled(
    jobs.map((job) => {
      if (job.kind !== 'abort') return pipe.generate(job.options);
      const controller = new AbortController();
      return pipe.generate({
        ...job.options,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.step === job.abortAt) controller.abort();
        },
      });
    }),
  );
  for (const [i, job] of jobs.entries()) {
    const outcome = outcomes[i];
    if (job.kind === 'ok') {
      expect(outcome.status).toBe('fulfilled');
      const alone = await pipe.generate(job.options); // the same job run by itself
      expect(bytes((outcome as PromiseFulfilledResult<Awaited<ReturnType<Pipeline['generate']>>>).value).equals(bytes(alone))).toBe(true);
    } else {
      expect(outcome.status).toBe('rejected');
      const err = (outcome as PromiseRejectedResult).reason as FusediffError;
      expect(err).toBeInstanceOf(FusediffError);
      expect(err.code).toBe(job.kind === 'abort' ? 'E_ABORTED' : err.code);
      if (job.kind === 'invalid') expect(['E_ARGUMENT', 'E_RESOURCE', 'E_CONFIG']).toContain(err.code);
    }
  }
  await collect();
  pipe.unet.releaseCachedMemory(); // the arenas kept for reuse, one per concurrent forward
  expect(memoryStats().liveBytes).toBe(base);
  const after = await pipe.generate({ batchSize: 2, steps: 3, seed: 5, height: 16, width: 16 });
  expect(after.images).toHaveLength(2);
});
