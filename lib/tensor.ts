/**
 * A float32 tensor in native memory. JS holds a handle; the data crosses into JS only when
 * asked (toFloat32Array). Release it with dispose() when done; garbage collection frees it
 * too, later.
 */
import { FusediffError } from './errors.js';
import { native, type NativeTensor } from './native.js';

export class Tensor {
  /** @internal */
  readonly handle: NativeTensor;

  /** @internal Use Tensor.fromFloat32 or a library call that returns a Tensor. */
  constructor(handle: NativeTensor) {
    this.handle = handle;
  }

  /** Copies `data` into a new native tensor of the given shape (row-major; images are NCHW). */
  static fromFloat32(data: Float32Array | ArrayLike<number>, shape: readonly number[]): Tensor {
    if (!Array.isArray(shape)) throw new FusediffError('E_ARGUMENT', 'shape must be an array of integers');
    const values = data instanceof Float32Array ? data : Float32Array.from(data);
    return new Tensor(new (native().NativeTensor)(values, [...shape]));
  }

  /** The dimensions, e.g. [batch, channels, height, width]. */
  get shape(): number[] {
    return this.handle.shape();
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get disposed(): boolean {
    return this.handle.disposed();
  }

  /** A copy of the data, made off the main thread. */
  toFloat32Array(): Promise<Float32Array> {
    try {
      return this.handle.read();
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Frees the native memory now. Further use gives E_DISPOSED. Safe to call twice. */
  dispose(): void {
    this.handle.dispose();
  }
}
