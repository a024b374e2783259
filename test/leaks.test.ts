/**
 * Memory that never leaks: 1,000 forward passes in one process, half with outputs disposed
 * and half left to the garbage collector. After warm-up, RSS grows by less than 5% and the
 * engine's live-byte counter returns to its baseline.
 */
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadUNet, memoryStats, Tensor } from '../lib/index.js';
import { collect } from './helpers/gc.js';
import { rng } from './helpers/random-model.js';


it('1,000 forwards after warm-up: RSS grows < 5% after warm-up and engine memory returns to baseline', async () => {
  const baseline = memoryStats().liveBytes;
  const unet = await loadUNet(path.join(__dirname, 'fixtures/diffusers/models/unet_basic'));
  const r = rng(5);
  const data = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => 2 * r() - 1);

  // Rounds of 100 forwards, alternately disposing everything and leaving it all to the
  // garbage collector (which a service would run every so often: here after each round).
  const round = async (dispose: boolean) => {
    for (let i = 0; i < 100; i++) {
      const x = Tensor.fromFloat32(data, [2, 3, 16, 16]);
      const y = await unet.forward(x, i * 10);
      if (dispose) {
        x.dispose();
        y.dispose();
      }
    }
    await collect();
  };

  for (let r = 0; r < 3; r++) await round(r % 2 === 0); // warm-up: arenas, thread pool, JIT, malloc
  const rssWarm = process.memoryUsage().rss;
  const engineWarm = memoryStats().liveBytes;
  for (let r = 0; r < 10; r++) await round(r % 2 === 1); // ends, like the warm-up, on a disposing round
  const rssAfter = process.memoryUsage().rss;
  expect(memoryStats().liveBytes).toBe(engineWarm);
  expect(rssAfter / rssWarm).toBeLessThan(1.05);

  unet.dispose();
  await collect();
  expect(memoryStats().liveBytes).toBe(baseline);
});
