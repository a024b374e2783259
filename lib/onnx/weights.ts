/**
 * Named weights of a model as PyTorch stored them (float32, original shapes), for the ONNX
 * exporter: the engine packs weights into kernel layouts and never hands the originals
 * back, so the exporter reads them again, one tensor at a time, through the native reader
 * that loading uses (binding/weight_reader.h). Whatever loadUNet accepts exports too:
 * safetensors or PyTorch .bin, sharded, half precision, current or legacy diffusers names.
 */
import { native, type NativeWeightReader } from '../native.js';

export interface Weight {
  shape: number[];
  data: Float32Array;
}

export class WeightReader {
  private readonly reader: NativeWeightReader;

  constructor(files: readonly string[]) {
    this.reader = native().NativeWeightReader.open([...files]);
  }

  has(name: string): boolean {
    return this.reader.shape(name) !== null;
  }

  /** The tensor `name` as float32; E_FORMAT when no file has it. */
  get(name: string): Weight {
    const data = this.reader.read(name);
    return { shape: this.reader.shape(name)!, data };
  }

  close(): void {
    this.reader.close();
  }
}
