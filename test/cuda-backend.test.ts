/**
 * The CUDA backend from JS on whatever machine runs the tests: loading with device 'cuda'
 * either works (a GPU machine with the library built) or fails with E_BACKEND_UNAVAILABLE and
 * a message that says what is missing: the library at a path, the driver, or a device. Never
 * a crash. (The GPU checks themselves are `npm run test:cuda`, not part of npm test.)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FusediffError, listDevices, loadUNet, Tensor } from '../lib/index.js';

const MODEL = path.join(__dirname, 'fixtures/diffusers/models/unet_basic');
const BUILT = path.join(__dirname, '..', 'build', 'Release', 'libfusediff_cuda.so');

async function loadError(options: Parameters<typeof loadUNet>[1]): Promise<FusediffError | null> {
  try {
    const unet = await loadUNet(MODEL, options);
    // A machine with a GPU: the forward runs and gives finite numbers.
    const y = await unet.forward(Tensor.fromFloat32(new Float32Array(768), [1, 3, 16, 16]), 10);
    expect((await y.toFloat32Array()).every(Number.isFinite)).toBe(true);
    unet.dispose();
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(FusediffError);
    return e as FusediffError;
  }
}

describe('device: cuda', () => {
  const saved = process.env.FUSEDIFF_CUDA_LIBRARY;
  afterEach(() => {
    if (saved === undefined) delete process.env.FUSEDIFF_CUDA_LIBRARY;
    else process.env.FUSEDIFF_CUDA_LIBRARY = saved;
  });

  it('a missing library is E_BACKEND_UNAVAILABLE naming the path', async () => {
    process.env.FUSEDIFF_CUDA_LIBRARY = '/nonexistent/fusediff/libfusediff_cuda.so';
    const e = await loadError({ device: 'cuda' });
    expect(e?.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(e?.message).toMatch(/not found or did not load at \/nonexistent\/fusediff\/libfusediff_cuda\.so/);
    const { devices, cuda } = await listDevices();
    expect(devices).toEqual([expect.objectContaining({ device: 'cpu' })]);
    expect(cuda.available).toBe(false);
    expect(cuda.library).toBe('/nonexistent/fusediff/libfusediff_cuda.so');
    expect(cuda.reason).toMatch(/not found or did not load/);
  });

  it.runIf(existsSync(BUILT))('with the built library: runs on a GPU, or says there is no driver / no device', async () => {
    const e = await loadError({ device: 'cuda' });
    const { devices, cuda } = await listDevices();
    expect(devices[0].device).toBe('cpu');
    expect(cuda.library).toBe(BUILT);
    expect(cuda.build).toMatch(/^CUDA runtime \d+\.\d+ \(static\), kernels for /);
    if (e === null) {
      expect(cuda.available).toBe(true);
      expect(devices.length).toBeGreaterThan(1);
      return;
    }
    expect(e.code).toBe('E_BACKEND_UNAVAILABLE');
    expect(e.message).toMatch(/no usable CUDA (driver|device)/);
    expect(cuda.available).toBe(false);
    expect(cuda.reason).toMatch(/no usable CUDA (driver|device)/);
    expect(devices).toHaveLength(1);
  });

  it('checks its options before anything loads', async () => {
    expect((await loadError({ device: 'tpu' as never }))?.code).toBe('E_BACKEND_UNAVAILABLE');
    expect((await loadError({ device: 'cuda:x' as never }))?.code).toBe('E_BACKEND_UNAVAILABLE');
    expect((await loadError({ device: 'cpu', precision: 'tf32' }))?.code).toBe('E_ARGUMENT');
    expect((await loadError({ device: 'cuda', precision: 'fp8' as never }))?.code).toBe('E_ARGUMENT');
    expect((await loadError({ device: 'cuda', kernels: 'avx2' }))?.code).toBe('E_ARGUMENT');
  });
});
