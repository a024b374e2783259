/**
 * Reads named weights from a model's safetensors file(s) for the ONNX exporter, as float32.
 *
 * Why a second reader next to the native one: the native engine packs weights into kernel
 * layouts and never hands the original tensors back; the exporter needs them as PyTorch
 * stored them. Tensors are read one at a time with positioned reads (no whole-file buffer),
 * so exporting a 1 GB checkpoint costs about one copy of the weights.
 *
 * safetensors layout: u64 little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the data
 * section; offsets are relative to its start, data little-endian.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FusediffError } from '../errors.js';

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

interface Entry {
  fd: number;
  file: string;
  dtype: string;
  shape: number[];
  offset: number;
  bytes: number;
}

export interface Weight {
  shape: number[];
  data: Float32Array;
}

export class WeightReader {
  private readonly entries = new Map<string, Entry>();
  private readonly fds: number[] = [];

  constructor(files: readonly string[]) {
    try {
      for (const file of files) this.index(file);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor `name` as float32 (F16, BF16 and F64 are converted, as the native loader does). */
  get(name: string): Weight {
    const e = this.entries.get(name);
    if (!e) throw new FusediffError('E_FORMAT', `weight "${name}" is not in ${this.describeFiles()}`);
    const count = e.shape.reduce((a, b) => a * b, 1);
    const raw = new Uint8Array(e.bytes);
    readFully(e.fd, raw, e.offset, e.file);
    let data: Float32Array;
    switch (e.dtype) {
      case 'F32':
        data = new Float32Array(raw.buffer, 0, count);
        break;
      case 'F64':
        data = Float32Array.from(new Float64Array(raw.buffer, 0, count));
        break;
      case 'BF16': {
        // bfloat16 is the top half of a float32.
        const halves = new Uint16Array(raw.buffer, 0, count);
        const bits = new Uint32Array(count);
        for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
        data = new Float32Array(bits.buffer);
        break;
      }
      case 'F16': {
        const halves = new Uint16Array(raw.buffer, 0, count);
        data = new Float32Array(count);
        for (let i = 0; i < count; i++) data[i] = halfToFloat(halves[i]);
        break;
      }
      default:
        throw new FusediffError('E_UNSUPPORTED', `weight "${name}" has dtype ${e.dtype}; the exporter reads F32, F16, BF16 and F64`);
    }
    return { shape: e.shape, data };
  }

  close(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }

  private describeFiles(): string {
    return [...new Set([...this.entries.values()].map((e) => e.file))].join(', ') || 'the weight files';
  }

  private index(file: string): void {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (cause) {
      throw new FusediffError('E_IO', `cannot open weight file ${file}: ${(cause as Error).message}`);
    }
    this.fds.push(fd);
    const size = fstatSync(fd).size;
    const head = new Uint8Array(8);
    if (size < 8) throw new FusediffError('E_FORMAT', `${file} is too short to be a safetensors file`);
    readFully(fd, head, 0, file);
    const headerLen = Number(new DataView(head.buffer).getBigUint64(0, true));
    if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size)
      throw new FusediffError('E_FORMAT', `${file}: safetensors header length ${headerLen} does not fit the file (${size} bytes)`);
    const headerBytes = new Uint8Array(headerLen);
    readFully(fd, headerBytes, 8, file);
    let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
    try {
      header = JSON.parse(Buffer.from(headerBytes).toString('utf8'));
    } catch (cause) {
      throw new FusediffError('E_FORMAT', `${file}: safetensors header is not JSON: ${(cause as Error).message}`);
    }
    const base = 8 + headerLen;
    for (const [name, info] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets: offsets } = info;
      const valid =
        typeof dtype === 'string' &&
        Array.isArray(shape) &&
        shape.every((d) => Number.isSafeInteger(d) && d >= 0) &&
        Array.isArray(offsets) &&
        offsets.length === 2 &&
        offsets.every((o) => Number.isSafeInteger(o) && o >= 0) &&
        offsets[0] <= offsets[1] &&
        base + offsets[1] <= size;
      if (!valid) throw new FusediffError('E_FORMAT', `${file}: safetensors entry "${name}" is malformed`);
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      const width = BYTES_PER_ELEMENT[dtype as string];
      const bytes = (offsets as number[])[1] - (offsets as number[])[0];
      if (width !== undefined && count * width !== bytes)
        throw new FusediffError('E_FORMAT', `${file}: "${name}" holds ${bytes} bytes, its shape needs ${count * width}`);
      this.entries.set(name, { fd, file, dtype: dtype as string, shape: shape as number[], offset: base + (offsets as number[])[0], bytes });
    }
  }
}

function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.byteLength) {
    let n: number;
    try {
      n = readSync(fd, into, done, into.byteLength - done, position + done);
    } catch (cause) {
      throw new FusediffError('E_IO', `reading ${file}: ${(cause as Error).message}`);
    }
    if (n === 0) throw new FusediffError('E_FORMAT', `${file} ended early`);
    done += n;
  }
}

/** IEEE 754 binary16 -> number (subnormals, infinities and NaN included). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
