/**
 * Memory that never leaks: 1,000 forward passes in one process, half with outputs disposed
 * and half left to the garbage collector. After warm-up, RSS grows by less than 5% and the
 * engine's live-byte counter returns to its baseline.
 */
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { expect, it } from 'vitest';
import { loadUNet, memoryStats, Tensor } from '../lib/index.js';
import { rng } from './helpers/random-model.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
async function collect(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

it('1,000 forwards: RSS grows < 5% after warm-up and engine memory returns to baseline', async () => {
  const baseline = memoryStats().liveBytes;
  const unet = await loadUNet(path.join(__dirname, 'fixtures/diffusers/models/unet_basic'));
  const r = rng(5);
  const data = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => 2 * r() - 1);

  const round = async (count: number, dispose: boolean) => {
    for (let i = 0; i < count; i++) {
      const x = Tensor.fromFloat32(data, [2, 3, 16, 16]);
      const y = await unet.forward(x, i % 1000);
      if (dispose) {
        x.dispose();
        y.dispose();
      }
    }
    await collect();
  };

  await round(100, true); // warm-up: arenas, thread pool, JIT
  await round(100, false);
  const rssWarm = process.memoryUsage().rss;
  const engineWarm = memoryStats().liveBytes;
  await round(500, true);
  await round(500, false);
  const rssAfter = process.memoryUsage().rss;
  expect(memoryStats().liveBytes).toBe(engineWarm);
  expect(rssAfter / rssWarm).toBeLessThan(1.05);

  unet.dispose();
  await collect();
  expect(memoryStats().liveBytes).toBe(baseline);
});
