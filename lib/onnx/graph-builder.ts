/**
 * Builds an ONNX graph node by node: unique value names, initializers (weights and the small
 * shape/axis constants ONNX takes as inputs since opset 13), and attribute helpers.
 * It knows nothing of U-Nets; unet-graph.ts drives it.
 */
import { DataType, type AttributeValue, type GraphDef, type NodeDef, type TensorDef, type ValueInfoDef } from './onnx-proto.js';

export type Attrs = Record<string, number | string | readonly number[] | { float: number }>;

export class GraphBuilder {
  private readonly nodes: NodeDef[] = [];
  private readonly initializers: TensorDef[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private readonly opCounts = new Map<string, number>();

  /** A fresh value name based on `hint`. */
  fresh(hint: string): string {
    let name = hint;
    for (let i = 1; this.names.has(name); i++) name = `${hint}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Declares a name that is defined outside the node list (a graph input). */
  reserve(name: string): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: duplicate name ${name}`);
    this.names.add(name);
    return name;
  }

  /** A float32 initializer (a weight); returns its name. */
  weight(name: string, dims: readonly number[], data: Float32Array): string {
    const n = this.fresh(name);
    this.initializers.push({ name: n, dataType: DataType.FLOAT, dims, raw: bytesOf(data) });
    return n;
  }

  /** A float64 initializer (the sinusoidal frequencies are kept in double). */
  weightF64(name: string, dims: readonly number[], data: Float64Array): string {
    const n = this.fresh(name);
    this.initializers.push({ name: n, dataType: DataType.DOUBLE, dims, raw: bytesOf(data) });
    return n;
  }

  /** An int64 vector constant (shapes, axes, slice bounds), shared between nodes. */
  ints(values: readonly number[]): string {
    const key = `i64:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_i64_${values.map((v) => (v < 0 ? `m${-v}` : String(v))).join('_')}`);
      const data = BigInt64Array.from(values, (v) => BigInt(v));
      this.initializers.push({ name, dataType: DataType.INT64, dims: [values.length], raw: bytesOf(data) });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 scalar constant, shared between nodes. */
  scalar(value: number): string {
    const key = `f32:${Object.is(value, -0) ? '-0' : value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_f32_${String(value).replace(/[^0-9a-zA-Z]/g, '_')}`);
      this.initializers.push({ name, dataType: DataType.FLOAT, dims: [], raw: bytesOf(Float32Array.of(value)) });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float32 vector constant filled with `value` (InstanceNormalization's unit scale/zero bias), shared. */
  filled(value: number, length: number): string {
    return this.floats(new Array<number>(length).fill(value));
  }

  /** A float32 vector constant (e.g. Resize scales), shared between nodes. */
  floats(values: readonly number[]): string {
    const key = `f32v:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh(`const_f32v_${values.length}`);
      this.initializers.push({ name, dataType: DataType.FLOAT, dims: [values.length], raw: bytesOf(Float32Array.from(values)) });
      this.constants.set(key, name);
    }
    return name;
  }

  /** Adds a node with one output; returns the output's name. */
  op(opType: string, inputs: readonly string[], attrs: Attrs = {}, outputHint?: string): string {
    return this.opMulti(opType, inputs, 1, attrs, outputHint)[0];
  }

  /** Adds a node with `outputs` outputs. */
  opMulti(opType: string, inputs: readonly string[], outputs: number, attrs: Attrs = {}, outputHint?: string): string[] {
    const count = (this.opCounts.get(opType) ?? 0) + 1;
    this.opCounts.set(opType, count);
    const base = outputHint ?? `${opType.toLowerCase()}_${count}`;
    const outs = Array.from({ length: outputs }, (_, i) => this.fresh(outputs === 1 ? base : `${base}_${i}`));
    this.nodes.push({ name: `${opType}_${count}`, opType, inputs, outputs: outs, attributes: toAttributes(attrs) });
    return outs;
  }

  /** Renames a value everywhere it appears (used to give the graph output its public name). */
  renameValue(from: string, to: string): string {
    const n = this.reserve(to);
    const swap = (names: readonly string[]) => names.map((x) => (x === from ? n : x));
    for (let i = 0; i < this.nodes.length; i++)
      this.nodes[i] = { ...this.nodes[i], inputs: swap(this.nodes[i].inputs), outputs: swap(this.nodes[i].outputs) };
    return n;
  }

  build(name: string, inputs: ValueInfoDef[], outputs: ValueInfoDef[], doc?: string): GraphDef {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs, outputs, doc };
  }

  get nodeCount(): number {
    return this.nodes.length;
  }
}

function toAttributes(attrs: Attrs): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'number') out[k] = { kind: 'int', value: v };
    else if (typeof v === 'string') out[k] = { kind: 'string', value: v };
    else if (Array.isArray(v)) out[k] = { kind: 'ints', value: v };
    else out[k] = { kind: 'float', value: (v as { float: number }).float };
  }
  return out;
}

/** The bytes of a typed array, without a copy (raw_data is little-endian: checked by the exporter). */
function bytesOf(a: Float32Array | Float64Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
