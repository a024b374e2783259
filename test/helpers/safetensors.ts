/**
 * A small safetensors reader/writer for tests: reads the fixture files (F32, F64, I64, BOOL)
 * and writes weight files. Independent of the native reader on purpose: tests should not
 * trust the code they check.
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

/** Writes F32 tensors in order; the header is space-padded so data starts 8-byte aligned. */
export function writeSafetensors(file: string, tensors: { name: string; shape: number[]; data: Float32Array }[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  writeFileSync(file, Buffer.concat([head, Buffer.from(json), ...tensors.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))]));
}
