/** Forward-pass behaviour beyond the golden numbers: batching, timesteps forms, concurrency. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedPlan, loadUNet, memoryStats, runtimeInfo, setNumThreads, Tensor, type PlanOp, type UNet } from '../lib/index.js';
import { rng } from './helpers/random-model.js';

const CM = path.join(__dirname, 'fixtures/diffusers/models/unet_cm_mirror');

function randomImages(batch: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: batch * 3 * 16 * 16 }, () => 2 * r() - 1);
}

describe('forward', () => {
  let unet: UNet;
  beforeAll(async () => {
    unet = await loadUNet(CM);
  });
  afterAll(() => unet.dispose());

  it('a batch gives exactly what its images give one by one', async () => {
    const data = randomImages(3, 1);
    const t = [-1553.5, 0, 1095.5];
    const labels = [0, 3, 9];
    const batched = await (await unet.forward(Tensor.fromFloat32(data, [3, 3, 16, 16]), t, { classLabels: labels })).toFloat32Array();
    const per = 3 * 16 * 16;
    for (let i = 0; i < 3; i++) {
      const one = Tensor.fromFloat32(data.subarray(i * per, (i + 1) * per), [1, 3, 16, 16]);
      const y = await (await unet.forward(one, t[i], { classLabels: [labels[i]] })).toFloat32Array();
      expect(Buffer.compare(Buffer.from(y.buffer), Buffer.from(batched.buffer, i * per * 4, per * 4))).toBe(0);
    }
  });

  it('the result does not depend on the thread count, which can change while forwards run', async () => {
    const x = Tensor.fromFloat32(randomImages(4, 9), [4, 3, 16, 16]);
    const labels = [1, 2, 3, 4];
    const results: Float32Array[] = [];
    try {
      for (const threads of [1, 2, 3]) {
        setNumThreads(threads);
        expect(runtimeInfo().threads).toBe(threads);
        results.push(await (await unet.forward(x, 321, { classLabels: labels })).toFloat32Array());
      }
      // Switching pools under running forwards is safe.
      const running = Array.from({ length: 6 }, () => unet.forward(x, 321, { classLabels: labels }));
      setNumThreads(2);
      for (const r of await Promise.all(running)) results.push(await r.toFloat32Array());
    } finally {
      setNumThreads(0);
    }
    for (const r of results.slice(1)) expect(Buffer.compare(Buffer.from(r.buffer), Buffer.from(results[0].buffer))).toBe(0);
  });

  it('runs 3x3 stride-1 float convs with >= 32 channels (multiples of 16) by Winograd, the others directly', () => {
    // FUSEDIFF_CONV=direct (which the kernel-path runs of CI also use) makes every conv direct.
    const direct = process.env.FUSEDIFF_CONV === 'direct';
    const plan = unet.describePlan();
    const convs = plan.ops.filter((o): o is Extract<PlanOp, { op: 'conv' }> => o.op === 'conv');
    for (const c of convs) {
      const inC = plan.values[c.in].channels, outC = plan.values[c.out].channels;
      const applies = c.kernel === 3 && c.stride === 1 && c.pad === 1 && inC % 16 === 0 && outC % 16 === 0 && inC >= 32 && outC >= 32;
      expect(c.algorithm).toBe(applies && !direct ? 'winograd' : 'direct');
    }
    // This model has both kinds (16- and 32-channel levels, stride-2 downsampling).
    expect(new Set(convs.map((c) => c.algorithm)).size).toBe(direct ? 1 : 2);
    // The config-only plan names the same algorithms.
    const algorithms = (ops: PlanOp[]) => ops.map((o) => (o.op === 'conv' ? o.algorithm : o.op));
    expect(algorithms(expectedPlan(unet.config).ops)).toEqual(algorithms(plan.ops));
  });

  it('a scalar timestep equals the same value repeated per item', async () => {
    const x = Tensor.fromFloat32(randomImages(2, 2), [2, 3, 16, 16]);
    const a = await (await unet.forward(x, 250, { classLabels: [1, 1] })).toFloat32Array();
    const b = await (await unet.forward(x, [250, 250], { classLabels: [1] })).toFloat32Array();
    expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer))).toBe(0);
  });

  it('concurrent forwards on one model equal sequential ones', async () => {
    const inputs = Array.from({ length: 8 }, (_, i) => Tensor.fromFloat32(randomImages(1, 100 + i), [1, 3, 16, 16]));
    const sequential: Float32Array[] = [];
    for (const [i, x] of inputs.entries()) sequential.push(await (await unet.forward(x, i * 100, { classLabels: [i] })).toFloat32Array());
    const concurrent = await Promise.all(
      inputs.map(async (x, i) => (await unet.forward(x, i * 100, { classLabels: [i] })).toFloat32Array()),
    );
    for (let i = 0; i < inputs.length; i++) expect(Array.from(concurrent[i])).toEqual(Array.from(sequential[i]));
  });

  it('the event loop keeps running during a forward', async () => {
    const x = Tensor.fromFloat32(randomImages(64, 3), [64, 3, 16, 16]);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const start = performance.now();
    const pending = unet.forward(x, 10, { classLabels: new Array(64).fill(2) });
    const returnedAfter = performance.now() - start;
    await pending;
    const total = performance.now() - start;
    clearInterval(timer);
    // The call only queues work: it returns long before the result, and timers fire meanwhile.
    expect(returnedAfter).toBeLessThan(total / 4);
    expect(ticks).toBeGreaterThan(0);
  });

  it('disposing outputs returns engine memory to its level before the forwards', async () => {
    const x = Tensor.fromFloat32(randomImages(1, 4), [1, 3, 16, 16]);
    await (await unet.forward(x, 1, { classLabels: [0] })).dispose(); // warm the arena
    const before = memoryStats().liveBytes;
    for (let i = 0; i < 20; i++) (await unet.forward(x, i, { classLabels: [0] })).dispose();
    expect(memoryStats().liveBytes).toBe(before);
  });
});
