/**
 * A loaded UNet2DModel. forward() runs off the main thread and returns a new Tensor; the
 * model can serve many concurrent forwards (each takes its own activation arena).
 */
import { FusediffError } from '../errors.js';
import type { NativeForwardOptions, NativeUNet, PlanDescription, PlanOp, Precision } from '../native.js';
import { exportUNetOnnx, type ExportOnnxOptions, type ExportOnnxResult } from '../onnx/export.js';
import { Tensor } from '../tensor.js';
import type { UNet2DConfig } from './config.js';
import type { QuantizationEntry } from './quantization.js';

export interface ForwardOptions {
  /**
   * Class conditioning, one entry per batch item: integer class ids for models with
   * `num_class_embeds`; the class "timesteps" for `class_embed_type: "timestep"`; for
   * `"identity"`, a Float32Array of batch x time-embedding-dim values added to the embedding.
   */
  classLabels?: readonly number[] | Int32Array | Float64Array | Float32Array;
  /**
   * Pad every convolution circularly instead of with zeros (diffusers' padding_mode
   * "circular"), so that the output tiles seamlessly: floors, walls, terrain textures.
   */
  tileable?: boolean;
}

export interface UNetInfo {
  parameterCount: number;
  /** The kernels in use: a CPU path (avx512, avx2, generic, reference) or a CUDA device, e.g. 'cuda:0 NVIDIA H200 (tf32)'. */
  kernels: string;
  /** The int8/bf16 kernel path: avx512_bf16, avx512_vnni, avx512, avx2, generic or reference. */
  lowpKernels: string;
  /** The arithmetic of the conv and linear layers: 'float32', or 'int8' / 'bfloat16' for those the policy quantizes. */
  dtype: Precision;
  /** Conv ops and linear layers of the plan per precision (fused groups count once). */
  opPrecisions: Record<Precision, number>;
  /** The "quantization" entry of a quantized folder's config.json, else null. */
  quantization: QuantizationEntry | null;
  /** Input height and width must be multiples of 2^numDownsamples. */
  numDownsamples: number;
  timeEmbeddingDim: number;
}

export interface OpProfile {
  index: number;
  op: PlanOp['op'];
  milliseconds: number;
  flops: number;
  op_detail: PlanOp;
}

export interface ForwardProfile {
  output: Tensor;
  ops: OpProfile[];
}

/** FLOPs of each plan op at an input of batch x height x width (2 per multiply-add). */
export function opFlops(plan: PlanDescription, batch: number, height: number, width: number): number[] {
  const pixels = (v: number) => batch * (height >> plan.values[v].scale) * (width >> plan.values[v].scale);
  return plan.ops.map((op) => {
    if (op.op === 'conv') return 2 * pixels(op.out) * plan.values[op.out].channels * plan.values[op.in].channels * op.kernel * op.kernel;
    if (op.op === 'attention') {
      const tokens = pixels(op.out) / batch;
      return 2 * 2 * batch * tokens * tokens * plan.values[op.out].channels; // Q K^T and P V
    }
    return 0;
  });
}

export class UNet {
  readonly config: Readonly<UNet2DConfig>;
  /** The weight file(s) the weights were read from: safetensors or PyTorch .bin, one or several shards. */
  readonly weightFiles: readonly string[];
  /** @internal */
  handle: NativeUNet | null;
  private readonly precision: { dtype: Precision; quantization: QuantizationEntry | null };

  /** @internal Use loadUNet(). */
  constructor(
    config: UNet2DConfig,
    handle: NativeUNet,
    weightFiles: readonly string[],
    precision: { dtype: Precision; quantization: QuantizationEntry | null } = { dtype: 'float32', quantization: null },
  ) {
    this.config = Object.freeze(config);
    this.handle = handle;
    this.weightFiles = Object.freeze([...weightFiles]);
    this.precision = precision;
  }

  private native(): NativeUNet {
    if (!this.handle) throw new FusediffError('E_DISPOSED', 'this UNet has been disposed');
    return this.handle;
  }

  get info(): UNetInfo {
    const i = this.native().info();
    return {
      parameterCount: i.parameterCount,
      kernels: i.kernels,
      lowpKernels: i.lowpKernels,
      dtype: this.precision.dtype,
      opPrecisions: { ...i.opPrecisions },
      quantization: this.precision.quantization,
      numDownsamples: i.numDownsamples,
      timeEmbeddingDim: i.timeEmbeddingDim,
    };
  }

  /**
   * The model's output (noise prediction, or whatever it was trained to predict) for an NCHW
   * `sample` at `timestep` — one number for the whole batch or one per batch item.
   */
  async forward(sample: Tensor, timestep: number | readonly number[] | Float64Array, options: ForwardOptions = {}): Promise<Tensor> {
    const args = this.arguments(sample, timestep, options);
    return new Tensor(await this.native().forward(sample.handle, args));
  }

  /**
   * A forward that also times every op of the plan: the output, and per op its kind, wall
   * time and FLOPs (2 x multiply-adds of convolutions and attention matmuls) at this shape.
   */
  async profile(sample: Tensor, timestep: number | readonly number[] | Float64Array, options: ForwardOptions = {}): Promise<ForwardProfile> {
    const args = this.arguments(sample, timestep, options);
    const r = await this.native().forward(sample.handle, { ...args, profile: true });
    const plan = this.native().describe();
    const [batch, , height, width] = sample.shape;
    const flops = opFlops(plan, batch, height, width);
    return {
      output: new Tensor(r.output),
      ops: plan.ops.map((op, i) => ({ index: i, op: op.op, milliseconds: r.opSeconds[i] * 1000, flops: flops[i], op_detail: op })),
    };
  }

  /** The native forward's arguments, with the checks JS can make before queueing. */
  private arguments(
    sample: Tensor,
    timestep: number | readonly number[] | Float64Array,
    options: ForwardOptions,
  ): NativeForwardOptions {
    this.native();
    if (!(sample instanceof Tensor)) throw new FusediffError('E_ARGUMENT', 'sample must be a fusediff Tensor');
    const shape = sample.shape;
    if (shape.length !== 4)
      throw new FusediffError('E_SHAPE', `sample must be [batch, channels, height, width], got [${shape.join(', ')}]`);
    const [classIds, classValues, classVectors] = this.conditioning(shape[0], options);
    return { timesteps: toTimesteps(timestep, shape[0]), classIds, classValues, classVectors, tileable: options.tileable === true };
  }

  private conditioning(batch: number, options: ForwardOptions): [Float64Array | null, Float64Array | null, Float32Array | null] {
    let ids: Float64Array | null = null;
    let values: Float64Array | null = null;
    let vectors: Float32Array | null = null;
    const labels = options.classLabels;
    if (labels !== undefined && labels !== null) {
      if (this.config.class_embed_type === 'identity') {
        vectors = labels instanceof Float32Array ? labels : Float32Array.from(labels as ArrayLike<number>);
      } else if (this.config.class_embed_type === 'timestep') {
        values = Float64Array.from(labels as ArrayLike<number>);
      } else {
        ids = Float64Array.from(labels as ArrayLike<number>);
        if (ids.length === 1 && batch > 1) ids = new Float64Array(batch).fill(ids[0]);
      }
    }
    return [ids, values, vectors];
  }

  /** The execution plan: the ops, the activation values and the weights each op reads. */
  describePlan(): PlanDescription {
    return this.native().describe();
  }

  /**
   * Writes this model as a standard ONNX file (NCHW graph, opset 17 by default; dynamic batch,
   * height and width): inputs `sample` [N, C, H, W] float, `timestep` [N] float and, for
   * class-conditional models, `class_labels` ([N] int64 class ids; [N] float for
   * class_embed_type "timestep"; [N, E] float for "identity"); output `out_sample`.
   */
  async exportOnnx(file: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
    this.native(); // E_DISPOSED before any file is touched
    return exportUNetOnnx(this, file, options);
  }

  /** Bytes of activation memory one forward at this input size needs. */
  activationBytes(batch: number, height: number, width: number): number {
    return this.native().arenaBytes(batch, height, width);
  }

  /**
   * Frees the activation memory kept for reuse: one arena per input shape and concurrent
   * forward. The next forward of a shape allocates again.
   */
  releaseCachedMemory(): void {
    this.native().releaseCachedMemory();
  }

  /** Releases the weights and cached activation memory; forwards already running finish first. */
  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
  }
}

function toTimesteps(timestep: number | readonly number[] | Float64Array, batch: number): Float64Array {
  if (typeof timestep === 'number') {
    if (!Number.isFinite(timestep)) throw new FusediffError('E_ARGUMENT', `timestep must be a finite number, got ${timestep}`);
    return new Float64Array(batch).fill(timestep);
  }
  const values = Float64Array.from(timestep as ArrayLike<number>);
  if (values.length === 1 && batch > 1) return new Float64Array(batch).fill(values[0]);
  if (values.length !== batch)
    throw new FusediffError('E_SHAPE', `got ${values.length} timesteps for a batch of ${batch}; give one, or one per image`);
  for (const t of values) if (!Number.isFinite(t)) throw new FusediffError('E_ARGUMENT', `timestep ${t} is not finite`);
  return values;
}
