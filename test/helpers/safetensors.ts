/**
 * A small safetensors reader/writer for tests: reads the fixture files (F32, F64, I64, BOOL,
 * and F16 as float32) and writes weight files (F32 or F16). Independent of the native reader
 * on purpose: tests should not trust the code they check.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface StTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Uint8Array;
}

export function readSafetensors(file: string): Map<string, StTensor> {
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, StTensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    const copy = new Uint8Array(bytes).buffer; // aligned copy
    let data: StTensor['data'];
    switch (info.dtype) {
      case 'F32': data = new Float32Array(copy); break;
      case 'F64': data = new Float64Array(copy); break;
      case 'I64': data = new BigInt64Array(copy); break;
      case 'BOOL': data = new Uint8Array(copy); break;
      case 'F16': data = Float32Array.from(new Uint16Array(copy), halfToFloat); break;
      default: throw new Error(`test reader: dtype ${info.dtype}`);
    }
    out.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return out;
}

/** Values of a tensor as plain numbers (I64 converted exactly when they fit). */
export function numbers(t: StTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

export function float32(t: StTensor): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(numbers(t));
}

/** Float32 -> IEEE half bits, rounding to nearest even (as PyTorch's .half() does). */
export function floatToHalf(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exponent = (u >>> 23) & 0xff;
  let mantissa = u & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  let shift = 13;
  let bits = (e << 10) | (mantissa >>> 13);
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    shift = 14 - e;
    bits = mantissa >>> shift;
  }
  const rest = mantissa & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && bits & 1)) bits += 1; // a carry into the exponent is right
  return sign | bits;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** The values of `data` rounded to half precision, as float32. */
export function roundToHalf(data: Float32Array): Float32Array {
  return Float32Array.from(data, (x) => halfToFloat(floatToHalf(x)));
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** F32 (default), or F16: the values rounded to half precision. */
  dtype?: 'F32' | 'F16';
}

/** Writes tensors in order; the header is space-padded so data starts 8-byte aligned. */
export function writeSafetensors(file: string, tensors: TensorToWrite[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  const blobs = tensors.map((t) =>
    t.dtype === 'F16' ? new Uint8Array(Uint16Array.from(t.data, floatToHalf).buffer) : new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  );
  tensors.forEach((t, i) => {
    header[t.name] = { dtype: t.dtype ?? 'F32', shape: t.shape, data_offsets: [offset, offset + blobs[i].byteLength] };
    offset += blobs[i].byteLength;
  });
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(file, Buffer.concat([head, Buffer.from(json), ...blobs]));
}
