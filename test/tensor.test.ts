/** Native tensors: round trips, shapes, deterministic release and GC as a fallback. */
import { describe, expect, it } from 'vitest';
import { FusediffError, memoryStats, Tensor } from '../lib/index.js';
import { collect } from './helpers/gc.js';

describe('Tensor', () => {
  it('round-trips float32 data and reports its shape', async () => {
    const data = Float32Array.from({ length: 24 }, (_, i) => i * 0.5 - 3);
    const t = Tensor.fromFloat32(data, [2, 3, 2, 2]);
    expect(t.shape).toEqual([2, 3, 2, 2]);
    expect(t.size).toBe(24);
    const back = await t.toFloat32Array();
    expect(Array.from(back)).toEqual(Array.from(data));
    back[0] = 99; // a copy: the tensor is unchanged
    expect((await t.toFloat32Array())[0]).toBe(-3);
    t.dispose();
  });

  it('accepts plain arrays and rejects bad shapes', () => {
    expect(Tensor.fromFloat32([1, 2, 3], [3]).shape).toEqual([3]);
    for (const shape of [[-1, 3], [1.5, 2], [2, 2]]) {
      expect(() => Tensor.fromFloat32([1, 2, 3], shape)).toThrow(FusediffError);
    }
  });

  it('dispose() frees the native memory at once and is idempotent', async () => {
    const before = memoryStats().liveBytes;
    const t = Tensor.fromFloat32(new Float32Array(1 << 20), [1 << 20]);
    expect(memoryStats().liveBytes - before).toBe(4 << 20);
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(memoryStats().liveBytes).toBe(before);
    expect(() => t.shape).toThrow(/disposed/);
  });

  it('garbage collection frees tensors that were never disposed', async () => {
    await collect();
    const before = memoryStats().liveBytes;
    (() => {
      for (let i = 0; i < 50; i++) Tensor.fromFloat32(new Float32Array(1 << 16), [1 << 16]);
    })();
    expect(memoryStats().liveBytes - before).toBeGreaterThanOrEqual(50 * (4 << 16));
    await collect();
    expect(memoryStats().liveBytes).toBe(before);
  });
});
