/**
 * Resource limits: a forward whose activations would exceed the configured cap fails up
 * front with E_RESOURCE, before allocating anything; absurd sizes are refused by name.
 */
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { FusediffError, loadUNet, memoryStats, runtimeInfo, setActivationMemoryLimit, Tensor } from '../lib/index.js';

const BASIC = path.join(__dirname, 'fixtures/diffusers/models/unet_basic');
afterEach(() => setActivationMemoryLimit(0));

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (e instanceof FusediffError ? e.code : `not a FusediffError: ${String(e)}`),
  );
}

it('the default cap is a fraction of physical memory, and it is configurable', () => {
  const def = runtimeInfo().activationMemoryLimit;
  expect(def).toBeGreaterThan(64 << 20);
  setActivationMemoryLimit(123 << 20);
  expect(runtimeInfo().activationMemoryLimit).toBe(123 << 20);
  setActivationMemoryLimit(0);
  expect(runtimeInfo().activationMemoryLimit).toBe(def);
  expect(() => setActivationMemoryLimit(-1)).toThrow(FusediffError);
});

it('a forward above the cap fails before allocating, and one below it runs', async () => {
  const unet = await loadUNet(BASIC);
  const needed = unet.activationBytes(4, 64, 64);
  const x = Tensor.fromFloat32(new Float32Array(4 * 3 * 64 * 64), [4, 3, 64, 64]);
  setActivationMemoryLimit(needed - 1);
  const before = memoryStats();
  const err = await unet.forward(x, 1).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(FusediffError);
  expect((err as FusediffError).code).toBe('E_RESOURCE');
  expect((err as FusediffError).message).toMatch(/MiB of activations/);
  // Nothing was allocated for it (the output tensor is made only after the arena).
  expect(memoryStats().peakBytes).toBe(before.peakBytes);
  setActivationMemoryLimit(needed);
  expect(await code(unet.forward(x, 1))).toBe('ok');
  unet.dispose();
});

it('absurd sizes are refused with a message, not attempted', async () => {
  const unet = await loadUNet(BASIC);
  const huge = Tensor.fromFloat32(new Float32Array(3 * 2 * 131072), [1, 3, 2, 131072]);
  expect(await code(unet.forward(huge, 1))).toBe('E_RESOURCE');
  expect(() => Tensor.fromFloat32(new Float32Array(1), [1 << 20, 1 << 20, 1 << 20])).toThrow(/2\^31|values but shape/);
  expect(unet.activationBytes(1, 16, 16)).toBeGreaterThan(0);
  unet.dispose();
});
