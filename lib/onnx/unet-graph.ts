/**
 * Translates a UNet's executable plan (UNet.describePlan()) and its diffusers weights into a
 * standard NCHW ONNX graph: one ONNX subgraph per plan op, in plan order, so the exported
 * model computes exactly what the engine computes (same fused QKV, same time-projection
 * slices, same epilogue order), only unfused.
 *
 * Formulations, and why:
 * - GroupNorm: Reshape [N, G, -1] -> InstanceNormalization (unit scale, zero bias) -> Reshape
 *   back -> per-channel Mul/Add. Works from opset 6 (GroupNormalization only arrived in opset
 *   18, with per-group scale/bias until opset 21), and onnxruntime runs InstanceNormalization
 *   as one pass. Statistics are biased, as in torch.
 * - Sinusoidal / Fourier time projection in float64 (Cast -> Mul -> Sin/Cos -> Cast), as the
 *   engine computes it: in float32, t * f_j for t ~ 1000 alone moves the embedding by ~3e-5.
 * - Attention: Q, K, V are channel slices of the fused to_qkv conv output, reshaped to
 *   [N, heads, d, H*W]; softmax(Q^T K * 1/sqrt(d)) over keys, then (P V^T)^T back to NCHW.
 *   Only the small [tokens, d] operands are transposed, never the [tokens, tokens] scores.
 * - diffusers' asymmetric (0,1,0,1) padding of stride-2 convs with downsample_padding 0 is
 *   the Conv pads attribute [0, 0, 1, 1] (ONNX order: begins per axis, then ends).
 */
import { FusediffError } from '../errors.js';
import type { PlanDescription, PlanLinear, PlanOp } from '../native.js';
import { GraphBuilder } from './graph-builder.js';
import { DataType, type GraphDef, type ValueInfoDef } from './onnx-proto.js';
import type { WeightReader } from './weights.js';

export const INPUT_SAMPLE = 'sample';
export const INPUT_TIMESTEP = 'timestep';
export const INPUT_CLASS_LABELS = 'class_labels';
export const OUTPUT_SAMPLE = 'out_sample';

/** The symbolic (dynamic) dimensions of the graph's inputs and output. */
const BATCH = 'batch';
const HEIGHT = 'height';
const WIDTH = 'width';

export function buildUNetGraph(plan: PlanDescription, weights: WeightReader, name: string): GraphDef {
  return new UNetGraph(plan, weights).build(name);
}

class UNetGraph {
  private readonly g = new GraphBuilder();
  /** ONNX value name of each plan value, filled as ops produce them. */
  private readonly values: string[] = [];
  private projection = '';
  private readonly projectionSlices = new Map<string, string>();

  constructor(
    private readonly plan: PlanDescription,
    private readonly weights: WeightReader,
  ) {}

  build(name: string): GraphDef {
    const { plan, g } = this;
    const sample = g.reserve(INPUT_SAMPLE);
    const timestep = g.reserve(INPUT_TIMESTEP);
    const inputs: ValueInfoDef[] = [
      { name: sample, elemType: DataType.FLOAT, dims: [BATCH, plan.inChannels, HEIGHT, WIDTH], doc: 'NCHW sample' },
      { name: timestep, elemType: DataType.FLOAT, dims: [BATCH], doc: 'one timestep (or noise level for Fourier models) per image' },
    ];
    const classInput = this.classInput();
    if (classInput) inputs.push(classInput);

    this.timeEmbedding(timestep, classInput?.name);

    let x = sample;
    if (plan.centerInputSample) x = g.op('Sub', [g.op('Mul', [x, g.scalar(2)]), g.scalar(1)], {}, 'centered_sample');
    this.values[plan.input] = x;

    for (const op of plan.ops) this.emit(op);

    let out = this.value(plan.output);
    if (plan.time.type === 'fourier') {
      // Fourier models predict the score scaled by sigma: the output is divided by t per image.
      out = g.op('Div', [out, g.op('Reshape', [timestep, g.ints([-1, 1, 1, 1])])]);
    }
    const output = g.renameValue(out, OUTPUT_SAMPLE);
    const outputs: ValueInfoDef[] = [{ name: output, elemType: DataType.FLOAT, dims: [BATCH, plan.outChannels, HEIGHT, WIDTH] }];
    return g.build(name, inputs, outputs);
  }

  private classInput(): ValueInfoDef | null {
    const c = this.plan.classEmbedding;
    switch (c.type) {
      case null:
        return null;
      case 'embedding':
        return { name: this.g.reserve(INPUT_CLASS_LABELS), elemType: DataType.INT64, dims: [BATCH], doc: 'class id per image' };
      case 'timestep':
        return { name: this.g.reserve(INPUT_CLASS_LABELS), elemType: DataType.FLOAT, dims: [BATCH], doc: 'class "timestep" per image' };
      case 'identity':
        return {
          name: this.g.reserve(INPUT_CLASS_LABELS),
          elemType: DataType.FLOAT,
          dims: [BATCH, this.plan.time.dim],
          doc: 'class embedding vector per image, added to the time embedding',
        };
      default:
        throw new FusediffError('E_UNSUPPORTED', `class embedding type ${JSON.stringify((c as { type: unknown }).type)} cannot be exported`);
    }
  }

  // temb = linear_2(silu(linear_1(proj(t)))) (+ class embedding); proj = every ResNet's
  // time_emb_proj applied to silu(temb), as one Gemm whose columns the ops slice.
  private timeEmbedding(timestep: string, classLabels: string | undefined): void {
    const { plan, g } = this;
    const time = plan.time;
    let temb = this.mlp(this.projectTime(timestep), time.linear1, time.linear2);
    const c = plan.classEmbedding;
    if (c.type === 'embedding') {
      const table = this.weights.get('class_embedding.weight');
      const w = g.weight('class_embedding.weight', table.shape, table.data);
      temb = g.op('Add', [temb, g.op('Gather', [w, classLabels!], { axis: 0 })], {}, 'temb');
    } else if (c.type === 'timestep') {
      temb = g.op('Add', [temb, this.mlp(this.projectTime(classLabels!), c.linear1, c.linear2)], {}, 'temb');
    } else if (c.type === 'identity') {
      temb = g.op('Add', [temb, classLabels!], {}, 'temb');
    }
    this.projection = this.linear(this.silu(temb), plan.tembProj, 'temb_proj');
  }

  /** The sinusoidal or Fourier projection of a [N] float tensor, computed in float64. */
  private projectTime(t: string): string {
    const { g } = this;
    const time = this.plan.time;
    const column = g.op('Unsqueeze', [g.op('Cast', [t], { to: DataType.DOUBLE }), g.ints([1])]); // [N, 1]
    let angles: string;
    let flip: boolean;
    if (time.type === 'fourier') {
      // u_j = ln(t) * w_j * 2*pi with w = time_proj.weight; sin first (flip_sin_to_cos is ignored).
      const w = this.weights.get('time_proj.weight');
      const scaled = Float64Array.from(w.data, (v) => v * 2 * Math.PI);
      angles = g.op('Mul', [g.op('Log', [column]), g.weightF64('time_proj.weight_2pi', [1, scaled.length], scaled)]);
      flip = false;
    } else {
      // f_j = exp(-ln(10000) * j / (half - freq_shift)).
      const half = Math.floor(time.projDim / 2);
      const freqs = Float64Array.from({ length: half }, (_, j) => Math.exp((-Math.log(10000) * j) / (half - time.freqShift)));
      angles = g.op('Mul', [column, g.weightF64('time_proj.frequencies', [1, half], freqs)]);
      flip = time.flipSinToCos;
    }
    const sin = g.op('Sin', [angles]);
    const cos = g.op('Cos', [angles]);
    let emb = g.op('Concat', flip ? [cos, sin] : [sin, cos], { axis: 1 });
    if (time.type === 'positional' && time.projDim % 2 === 1) emb = g.op('Pad', [emb, g.ints([0, 0, 0, 1])]); // odd width: one zero column
    return g.op('Cast', [emb], { to: DataType.FLOAT }, 'time_proj');
  }

  private mlp(x: string, l1: PlanLinear, l2: PlanLinear): string {
    return this.linear(this.silu(this.linear(x, l1)), l2);
  }

  /** y = x W^T + b over the concatenation of the layer's sources (a Gemm with transB). */
  private linear(x: string, l: PlanLinear, hint?: string): string {
    const { weight, bias } = this.concatenated(l.sources, l.out, l.in);
    const name = l.sources.length === 1 ? l.sources[0] : hint ?? l.sources.join('+');
    const inputs = [x, this.g.weight(`${name}.weight`, [l.out, l.in], weight)];
    if (bias) inputs.push(this.g.weight(`${name}.bias`, [l.out], bias));
    return this.g.op('Gemm', inputs, { transB: 1 }, hint);
  }

  private silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  /** Columns [offset, offset + width) of the time projection, as [N, width, 1, 1] for broadcasting. */
  private projectionSlice(offset: number, width: number): string {
    const key = `${offset}:${width}`;
    let name = this.projectionSlices.get(key);
    if (!name) {
      const { g } = this;
      const cols = g.op('Slice', [this.projection, g.ints([offset]), g.ints([offset + width]), g.ints([1])]);
      name = g.op('Unsqueeze', [cols, g.ints([2, 3])]);
      this.projectionSlices.set(key, name);
    }
    return name;
  }

  private value(id: number): string {
    const v = this.values[id];
    if (v === undefined) throw new FusediffError('E_INTERNAL', `plan value ${id} is read before it is written`);
    return v;
  }

  private emit(op: PlanOp): void {
    switch (op.op) {
      case 'conv':
        return this.conv(op);
      case 'groupnorm':
        return this.groupNorm(op);
      case 'attention':
        return this.attention(op);
      case 'upsample2x':
        this.values[op.out] = this.g.op('Resize', [this.value(op.in), '', this.g.floats([1, 1, 2, 2])], {
          mode: 'nearest',
          coordinate_transformation_mode: 'asymmetric',
          nearest_mode: 'floor',
        });
        return;
      case 'avgpool2x2':
        this.values[op.out] = this.g.op('AveragePool', [this.value(op.in)], { kernel_shape: [2, 2], strides: [2, 2] });
        return;
      case 'concat':
        this.values[op.out] = this.g.op('Concat', [this.value(op.a), this.value(op.b)], { axis: 1 });
        return;
      default:
        throw new FusediffError('E_UNSUPPORTED', `plan op ${JSON.stringify((op as { op: unknown }).op)} has no ONNX export`);
    }
  }

  // y = (conv(x) + bias [+ temb_proj slice] [+ residual]) * outputScale — the engine's epilogue order.
  private conv(op: Extract<PlanOp, { op: 'conv' }>): void {
    const { g, plan } = this;
    const k = op.kernel;
    const inC = plan.values[op.in].channels;
    const outC = plan.values[op.out].channels;
    const { weight, bias } = this.concatenated(op.sources, outC, inC * k * k);
    const name = fusedName(op.sources);
    const inputs = [this.value(op.in), g.weight(`${name}.weight`, [outC, inC, k, k], weight)];
    if (bias) inputs.push(g.weight(`${name}.bias`, [outC], bias));
    let pads: number[];
    if (op.pad > 0) pads = [op.pad, op.pad, op.pad, op.pad];
    else if (op.stride === 2 && k === 3) pads = [0, 0, 1, 1]; // diffusers' F.pad(x, (0, 1, 0, 1))
    else if (k === 1) pads = [0, 0, 0, 0];
    else throw new FusediffError('E_UNSUPPORTED', `conv ${name}: kernel ${k}, stride ${op.stride}, pad ${op.pad} has no ONNX export`);
    let y = g.op('Conv', inputs, { kernel_shape: [k, k], strides: [op.stride, op.stride], pads });
    if (op.tembOffset >= 0) y = g.op('Add', [y, this.projectionSlice(op.tembOffset, outC)]);
    if (op.residual >= 0) y = g.op('Add', [y, this.value(op.residual)]);
    if (op.outputScale !== 1) y = g.op('Mul', [y, g.scalar(op.outputScale)]);
    this.values[op.out] = y;
  }

  private groupNorm(op: Extract<PlanOp, { op: 'groupnorm' }>): void {
    const { g } = this;
    const x = this.value(op.in);
    const channels = this.plan.values[op.in].channels;
    if (channels % op.groups !== 0)
      throw new FusediffError('E_UNSUPPORTED', `${op.source}: ${channels} channels do not split into ${op.groups} groups`);
    const grouped = g.op('Reshape', [x, g.ints([0, op.groups, -1])]);
    const normed = g.op('InstanceNormalization', [grouped, g.filled(1, op.groups), g.filled(0, op.groups)], { epsilon: { float: op.eps } });
    let y = g.op('Reshape', [normed, g.op('Shape', [x])]);
    const gamma = this.weights.get(`${op.source}.weight`);
    const beta = this.weights.get(`${op.source}.bias`);
    y = g.op('Mul', [y, g.weight(`${op.source}.weight`, [channels, 1, 1], gamma.data)]);
    y = g.op('Add', [y, g.weight(`${op.source}.bias`, [channels, 1, 1], beta.data)]);
    if (op.scaleShiftOffset >= 0) {
      // "scale_shift" ResNets: y * (1 + scale) + shift, scale and shift from the time projection.
      const scale = g.op('Add', [this.projectionSlice(op.scaleShiftOffset, channels), g.scalar(1)]);
      y = g.op('Add', [g.op('Mul', [y, scale]), this.projectionSlice(op.scaleShiftOffset + channels, channels)]);
    }
    if (op.silu) y = this.silu(y);
    this.values[op.out] = y;
  }

  private attention(op: Extract<PlanOp, { op: 'attention' }>): void {
    const { g } = this;
    const x = this.value(op.in); // [N, 3C, H, W]: Q features, then K, then V
    const channels = this.plan.values[op.out].channels;
    if (this.plan.values[op.in].channels !== 3 * channels || channels % op.heads !== 0)
      throw new FusediffError('E_INTERNAL', `attention over ${this.plan.values[op.in].channels} features, ${channels} channels, ${op.heads} heads`);
    const d = channels / op.heads;
    const heads = (part: number) => {
      const slice = g.op('Slice', [x, g.ints([part * channels]), g.ints([(part + 1) * channels]), g.ints([1])]);
      return g.op('Reshape', [slice, g.ints([0, op.heads, d, -1])]); // [N, heads, d, tokens]
    };
    const perm = { perm: [0, 1, 3, 2] };
    const q = g.op('Transpose', [heads(0)], perm); // [N, heads, tokens, d]
    const k = heads(1); // [N, heads, d, tokens]
    const v = g.op('Transpose', [heads(2)], perm); // [N, heads, tokens, d]
    const scores = g.op('Mul', [g.op('MatMul', [q, k]), g.scalar(1 / Math.sqrt(d))]);
    const p = g.op('Softmax', [scores], { axis: 3 }); // over keys
    const o = g.op('Transpose', [g.op('MatMul', [p, v])], perm); // [N, heads, d, tokens]
    const shape = g.op('Concat', [g.ints([0, channels]), g.op('Shape', [x], { start: 2 })], { axis: 0 });
    this.values[op.out] = g.op('Reshape', [o, shape]); // [N, C, H, W]
  }

  /**
   * Weights of several diffusers layers stacked along output channels (fused to_q/to_k/to_v,
   * the time projections of every ResNet). A layer without a bias contributes zeros, and the
   * bias is left out entirely when no layer has one.
   */
  private concatenated(sources: readonly string[], rows: number, rowLength: number): { weight: Float32Array; bias: Float32Array | null } {
    if (sources.length === 1) {
      // The common case: the layer's own tensors, no copy.
      const w = this.weights.get(`${sources[0]}.weight`);
      if (w.data.length !== rows * rowLength)
        throw new FusediffError('E_SHAPE', `weight ${sources[0]}.weight has shape [${w.shape.join(', ')}], the plan expects ${rows} x ${rowLength} elements`);
      const b = this.weights.has(`${sources[0]}.bias`) ? this.weights.get(`${sources[0]}.bias`).data : null;
      if (b && b.length !== rows) throw new FusediffError('E_SHAPE', `bias ${sources[0]}.bias has ${b.length} elements, expected ${rows}`);
      return { weight: w.data, bias: b };
    }
    const weight = new Float32Array(rows * rowLength);
    const bias = new Float32Array(rows);
    let anyBias = false;
    let row = 0;
    for (const s of sources) {
      const w = this.weights.get(`${s}.weight`);
      if (w.data.length % rowLength !== 0 || w.shape[0] * rowLength !== w.data.length)
        throw new FusediffError('E_SHAPE', `weight ${s}.weight has shape [${w.shape.join(', ')}], expected [*, ${rowLength}] elements per output`);
      const n = w.shape[0];
      if (row + n > rows) throw new FusediffError('E_SHAPE', `${sources.join(', ')}: more than ${rows} output channels`);
      weight.set(w.data, row * rowLength);
      if (this.weights.has(`${s}.bias`)) {
        const b = this.weights.get(`${s}.bias`).data;
        if (b.length !== n) throw new FusediffError('E_SHAPE', `bias ${s}.bias has ${b.length} elements, expected ${n}`);
        bias.set(b, row);
        anyBias = true;
      }
      row += n;
    }
    if (row !== rows) throw new FusediffError('E_SHAPE', `${sources.join(', ')}: ${row} output channels, the plan expects ${rows}`);
    return { weight, bias: anyBias ? bias : null };
  }
}

/** The initializer name of a (possibly fused) layer: "…attentions.0.to_qkv" for to_q/to_k/to_v. */
function fusedName(sources: readonly string[]): string {
  if (sources.length === 1) return sources[0];
  const prefix = sources[0].replace(/\.to_q$/, '');
  if (sources.length === 3 && sources.every((s, i) => s === `${prefix}.${['to_q', 'to_k', 'to_v'][i]}`)) return `${prefix}.to_qkv`;
  return sources.join('+');
}
