/**
 * The ONNX messages fusediff writes, as plain data, and their protobuf encoding.
 * Field numbers are those of onnx/onnx.proto (proto2; stable since IR version 3). Only the
 * fields an inference graph needs are written.
 */
import { ProtoMessage } from './protobuf.js';

/** TensorProto.DataType values (onnx.proto `enum DataType`). */
export const DataType = { FLOAT: 1, INT64: 7, DOUBLE: 11 } as const;
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** A graph initializer: raw little-endian bytes (TensorProto.raw_data). */
export interface TensorDef {
  name: string;
  dataType: DataTypeCode;
  dims: readonly number[];
  raw: Uint8Array;
}

export type AttributeValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: readonly number[] };

export interface NodeDef {
  name: string;
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: Readonly<Record<string, AttributeValue>>;
}

/** A graph input or output: element type and shape; a string dimension is symbolic (dynamic). */
export interface ValueInfoDef {
  name: string;
  elemType: DataTypeCode;
  dims: readonly (number | string)[];
  doc?: string;
}

export interface GraphDef {
  name: string;
  nodes: readonly NodeDef[];
  initializers: readonly TensorDef[];
  inputs: readonly ValueInfoDef[];
  outputs: readonly ValueInfoDef[];
  doc?: string;
}

export interface ModelDef {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  doc?: string;
  metadata?: Readonly<Record<string, string>>;
  graph: GraphDef;
}

/** AttributeProto.AttributeType values. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, INTS: 7 } as const;

function encodeTensor(t: TensorDef): ProtoMessage {
  const m = new ProtoMessage();
  // Repeated scalars not declared [packed = true] in onnx.proto are written one key per value,
  // as proto2 serializers do (parsers accept both forms, but this is the canonical one).
  for (const d of t.dims) m.varint(1, d); // TensorProto.dims = 1 (repeated int64)
  m.varint(2, t.dataType); // TensorProto.data_type = 2
  m.string(8, t.name); // TensorProto.name = 8
  m.bytes(9, t.raw); // TensorProto.raw_data = 9 (fixed-width little-endian)
  return m.finish();
}

function encodeAttribute(name: string, a: AttributeValue): ProtoMessage {
  const m = new ProtoMessage();
  m.string(1, name); // AttributeProto.name = 1
  switch (a.kind) {
    case 'float':
      m.float(2, a.value); // AttributeProto.f = 2
      m.varint(20, AttributeType.FLOAT); // AttributeProto.type = 20
      break;
    case 'int':
      m.varint(3, a.value); // AttributeProto.i = 3
      m.varint(20, AttributeType.INT);
      break;
    case 'string':
      m.string(4, a.value); // AttributeProto.s = 4
      m.varint(20, AttributeType.STRING);
      break;
    case 'ints':
      for (const v of a.value) m.varint(8, v); // AttributeProto.ints = 8 (repeated int64, unpacked)
      m.varint(20, AttributeType.INTS);
      break;
  }
  return m.finish();
}

function encodeNode(n: NodeDef): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i); // NodeProto.input = 1
  for (const o of n.outputs) m.string(2, o); // NodeProto.output = 2
  m.string(3, n.name); // NodeProto.name = 3
  m.string(4, n.opType); // NodeProto.op_type = 4 (default domain "")
  for (const [name, a] of Object.entries(n.attributes)) m.message(5, encodeAttribute(name, a)); // NodeProto.attribute = 5
  return m.finish();
}

function encodeValueInfo(v: ValueInfoDef): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.dims) {
    const dim = new ProtoMessage();
    if (typeof d === 'number') dim.varint(1, d); // Dimension.dim_value = 1
    else dim.string(2, d); // Dimension.dim_param = 2
    shape.message(1, dim); // TensorShapeProto.dim = 1
  }
  const tensorType = new ProtoMessage();
  tensorType.varint(1, v.elemType); // TypeProto.Tensor.elem_type = 1
  tensorType.message(2, shape); // TypeProto.Tensor.shape = 2
  const type = new ProtoMessage();
  type.message(1, tensorType); // TypeProto.tensor_type = 1
  const m = new ProtoMessage();
  m.string(1, v.name); // ValueInfoProto.name = 1
  m.message(2, type); // ValueInfoProto.type = 2
  if (v.doc) m.string(3, v.doc); // ValueInfoProto.doc_string = 3
  return m.finish();
}

function encodeGraph(g: GraphDef): ProtoMessage {
  const m = new ProtoMessage();
  for (const n of g.nodes) m.message(1, encodeNode(n)); // GraphProto.node = 1 (topologically sorted)
  m.string(2, g.name); // GraphProto.name = 2
  for (const t of g.initializers) m.message(5, encodeTensor(t)); // GraphProto.initializer = 5
  if (g.doc) m.string(10, g.doc); // GraphProto.doc_string = 10
  for (const v of g.inputs) m.message(11, encodeValueInfo(v)); // GraphProto.input = 11
  for (const v of g.outputs) m.message(12, encodeValueInfo(v)); // GraphProto.output = 12
  return m.finish();
}

/** The ModelProto, ready to be written: its chunks in file order. */
export function encodeModel(model: ModelDef): ProtoMessage {
  const m = new ProtoMessage();
  m.varint(1, model.irVersion); // ModelProto.ir_version = 1
  m.string(2, model.producerName); // ModelProto.producer_name = 2
  m.string(3, model.producerVersion); // ModelProto.producer_version = 3
  if (model.doc) m.string(6, model.doc); // ModelProto.doc_string = 6
  m.message(7, encodeGraph(model.graph)); // ModelProto.graph = 7
  const opset = new ProtoMessage();
  opset.string(1, ''); // OperatorSetIdProto.domain = 1 ("" = ai.onnx)
  opset.varint(2, model.opsetVersion); // OperatorSetIdProto.version = 2
  m.message(8, opset); // ModelProto.opset_import = 8
  for (const [key, value] of Object.entries(model.metadata ?? {})) {
    const entry = new ProtoMessage();
    entry.string(1, key); // StringStringEntryProto.key = 1
    entry.string(2, value); // StringStringEntryProto.value = 2
    m.message(14, entry); // ModelProto.metadata_props = 14
  }
  return m.finish();
}
