/** Process-level diagnostics and limits of the native engine. */
import { FusediffError } from './errors.js';
import { native, type CudaInfo } from './native.js';

/** Bytes and buffers the engine holds now, and its peak; for leak checks and monitoring. */
export function memoryStats(): { liveBytes: number; liveBuffers: number; peakBytes: number } {
  return native().memoryStats();
}

/** Kernel path, thread count, CPU features and the activation memory limit in force. */
export function runtimeInfo(): ReturnType<ReturnType<typeof native>['runtimeInfo']> {
  return native().runtimeInfo();
}

/**
 * Caps the activation memory of one forward pass (bytes); larger requests fail up front
 * with E_RESOURCE. 0 restores the default (half of physical memory).
 */
export function setActivationMemoryLimit(bytes: number): void {
  if (!Number.isFinite(bytes) || bytes < 0) throw new FusediffError('E_ARGUMENT', 'the memory limit must be a number of bytes >= 0');
  native().setActivationMemoryLimit(bytes);
}

/**
 * Sets the engine's thread count (0: the default, FUSEDIFF_NUM_THREADS or the physical
 * cores available to the process). Safe at any time: running forwards finish on the old pool.
 */
export function setNumThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0 || threads > 1024)
    throw new FusediffError('E_ARGUMENT', 'the thread count must be an integer in [0, 1024] (0: the default)');
  native().setNumThreads(threads);
}

/** A device fusediff can run on: the CPU always, CUDA devices when the library, driver and GPU are there. */
export interface DeviceInfo {
  /** The value for loadUNet's `device` option: 'cpu' or 'cuda:N'. */
  device: string;
  name: string;
  /** CUDA: compute capability and memory. */
  computeCapability?: string;
  totalMemory?: number;
}

/**
 * The devices of this machine, and why CUDA is not among them when it is not (`cuda.reason`:
 * no library at a path, no driver, no device). Asks the driver off the main thread.
 */
export async function listDevices(): Promise<{ devices: DeviceInfo[]; cuda: CudaInfo }> {
  const cuda = await native().cudaInfo();
  const devices: DeviceInfo[] = [{ device: 'cpu', name: `CPU (${native().runtimeInfo().kernels} kernels)` }];
  for (const d of cuda.devices)
    devices.push({ device: `cuda:${d.index}`, name: d.name, computeCapability: d.computeCapability, totalMemory: d.totalMemory });
  return { devices, cuda };
}
