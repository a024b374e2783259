/**
 * Loads the native addon: a prebuilt binary from prebuilds/<platform>-<arch>/ (shipped in
 * the npm package, so installing needs no compiler and no install script) or, in this
 * repository, the local build in build/Release/. node-gyp-build does the lookup.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FusediffError } from './errors.js';

export interface NativeTensor {
  shape(): number[];
  read(): Promise<Float32Array>;
  dispose(): void;
  disposed(): boolean;
}

export type Precision = 'float32' | 'int8' | 'bfloat16';

export interface NativeUNetInfo {
  parameterCount: number;
  kernels: string;
  lowpKernels: string;
  opPrecisions: Record<Precision, number>;
  numDownsamples: number;
  timeEmbeddingDim: number;
  numOps: number;
}

export interface PlanLinear {
  sources: string[];
  in: number;
  out: number;
  precision: Precision;
}

export type PlanOp =
  | {
      op: 'conv';
      sources: string[];
      in: number;
      out: number;
      kernel: number;
      stride: number;
      pad: number;
      tembOffset: number;
      residual: number;
      outputScale: number;
      precision: Precision;
      /**
       * How a float32 conv runs on the CPU's fast kernel paths: Winograd F(2x2, 3x3) for 3x3
       * stride-1 layers with >= 32 channels in multiples of 16, else direct. Always 'direct' with
       * FUSEDIFF_CONV=direct, for int8 / bf16 convs, on the reference path and on a CUDA device.
       */
      algorithm: 'direct' | 'winograd';
    }
  | { op: 'groupnorm'; source: string; in: number; out: number; groups: number; eps: number; silu: boolean; scaleShiftOffset: number }
  | { op: 'attention'; in: number; out: number; heads: number }
  | { op: 'upsample2x' | 'avgpool2x2'; in: number; out: number }
  | { op: 'concat'; a: number; b: number; out: number };

/** A loaded U-Net's plan: activation values (NHWC, height = H >> scale) and the ops over them. */
export interface PlanDescription {
  time: { type: 'positional' | 'fourier'; projDim: number; dim: number; flipSinToCos: boolean; freqShift: number; linear1: PlanLinear; linear2: PlanLinear };
  classEmbedding: { type: null | 'identity' } | { type: 'embedding'; numClasses: number } | { type: 'timestep'; linear1: PlanLinear; linear2: PlanLinear };
  /** Every ResNet's time_emb_proj as one layer applied to silu(temb); ops read column slices. */
  tembProj: PlanLinear;
  centerInputSample: boolean;
  inChannels: number;
  outChannels: number;
  numDownsamples: number;
  values: { scale: number; channels: number }[];
  input: number;
  output: number;
  ops: PlanOp[];
}

export interface NativeForwardOptions {
  timesteps: Float64Array;
  classIds?: Float64Array | null;
  classValues?: Float64Array | null;
  classVectors?: Float32Array | null;
  tileable?: boolean;
  profile?: boolean;
}

export interface NativeUNet {
  describe(): PlanDescription;
  forward(sample: NativeTensor, options: NativeForwardOptions & { profile: true }): Promise<{ output: NativeTensor; opSeconds: Float64Array }>;
  forward(sample: NativeTensor, options: NativeForwardOptions): Promise<NativeTensor>;
  info(): NativeUNetInfo;
  arenaBytes(batch: number, height: number, width: number): number;
  releaseCachedMemory(): void;
  dispose(): void;
}

export interface WeightSpec {
  name: string;
  shape: number[];
}

/** Options of the fused affine step kernel (native/kernels/step.h); coefficients are per image. */
export interface NativeAffineOptions {
  shape?: number[];
  ax?: Float64Array;
  am?: Float64Array;
  az?: Float64Array;
  bx?: Float64Array;
  bm?: Float64Array;
  b0?: Float64Array;
  bz?: Float64Array;
  by?: Float64Array;
  e0?: Float64Array;
  e1?: Float64Array;
  clamp?: [number, number];
  threshold?: [number, number];
  noiseScale?: 'constant' | 'sqrtv' | 'expv';
  guidance?: number;
  seeds?: Float64Array;
  stream?: number;
  wantX0?: boolean;
}

export interface NativeLangevinOptions {
  scoreScale: Float64Array;
  alpha?: Float64Array;
  snr: number;
  batchMean: boolean;
  guidance?: number;
  seeds?: Float64Array;
  stream?: number;
  wantMean?: boolean;
}

/** A model's weights as stored (binding/weight_reader.h); synchronous, one tensor per read. */
export interface NativeWeightReader {
  shape(name: string): number[] | null;
  read(name: string): Float32Array;
  close(): void;
}

export interface NativeAddon {
  stepAffine(
    x: NativeTensor | null,
    m: NativeTensor | null,
    z: NativeTensor | null,
    y: NativeTensor | null,
    options: NativeAffineOptions,
  ): Promise<[NativeTensor, NativeTensor | null]>;
  stepLangevin(
    x: NativeTensor,
    m: NativeTensor,
    z: NativeTensor | null,
    options: NativeLangevinOptions,
  ): Promise<[NativeTensor, NativeTensor | null, Float64Array]>;
  randn(shape: number[], seeds: Float64Array, stream: number): Promise<NativeTensor>;
  concatBatch(tensors: NativeTensor[]): Promise<NativeTensor>;
  toImages(x: NativeTensor, source: number[], scale: number, offset: number): Promise<Uint8Array>;

  NativeTensor: new (data?: Float32Array, shape?: number[]) => NativeTensor;
  NativeUNet: {
    load(
      config: object,
      weightFiles: string[],
      kernels?: string,
      precision?: { precision: Precision; floatLayers: string[]; quantizeFloatWeights: boolean },
      device?: string,
      devicePrecision?: string,
    ): Promise<NativeUNet>;
    /** The conv and linear layers of a config, with the fused group each runs in. */
    layers(config: object): { name: string; shape: number[]; group: string[] }[];
    /** Writes a fusediff-int8 safetensors file (native/unet/quantize.h). */
    quantize(
      config: object,
      weightFiles: string[],
      destination: string,
      floatLayers: string[],
    ): Promise<{ layers: { name: string; int8: boolean; relativeError: number }[]; tensors: number; bytes: number }>;
    expectedWeights(config: object): WeightSpec[];
    expectedPlan(config: object): PlanDescription;
  };
  NativeWeightReader: { open(weightFiles: string[]): NativeWeightReader };
  /** Writes the tensors of PyTorch checkpoints (shards of one state dict) to one safetensors file. */
  convertTorchBin(sources: string[], destination: string): Promise<{ tensors: number; bytes: number }>;
  setErrorClass(ctor: typeof FusediffError): void;
  memoryStats(): { liveBytes: number; liveBuffers: number; peakBytes: number };
  runtimeInfo(): {
    kernels: string;
    threads: number;
    cpuFeatures: { avx2: boolean; avx512: boolean; avx512Vnni: boolean; avx512Bf16: boolean };
    activationMemoryLimit: number;
  };
  setActivationMemoryLimit(bytes: number): void;
  /** Opens the CUDA library (if present) and asks the driver for devices; never rejects. */
  cudaInfo(): Promise<CudaInfo>;
  setNumThreads(threads: number): void;
  /** Dev hook (native/binding/bench_hook.cpp) for `npm run bench`: times one conv of the active kernel table. */
  benchConv2d(options: BenchConv2dOptions): Promise<{ kernels: string; seconds: number[] }>;
}

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  multiprocessors: number;
  totalMemory: number;
}

/** The CUDA backend as this process sees it: available, or the reason it is not. */
export interface CudaInfo {
  available: boolean;
  /** Where the library was looked for (or loaded from). */
  library: string;
  /** The library's build description, when it loaded. */
  build: string;
  /** Why CUDA is not available ('' when it is). */
  reason: string;
  devices: CudaDevice[];
}

export interface BenchConv2dOptions {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number;
  kernel: 1 | 3;
  stride: 1 | 2;
  iterations: number;
  warmup: number;
}

/** The package root: lib/ (sources under test) and dist/ (the build) both sit one level below. */
export function packageRoot(): string {
  const here = typeof __dirname === 'string' ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..');
}

let addon: NativeAddon | undefined;

export function native(): NativeAddon {
  if (addon) return addon;
  const root = packageRoot();
  const require = createRequire(path.join(root, 'package.json'));
  let loaded: NativeAddon;
  try {
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    loaded = load(root);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new FusediffError(
      'E_BACKEND_UNAVAILABLE',
      `no fusediff native binary for ${process.platform}-${process.arch} (Node-API 8) was found: ${detail}. ` +
        'Prebuilt binaries ship for linux-x64; elsewhere build from source: install cmake and a C++17 compiler, ' +
        'then run `npm run build:native` in node_modules/fusediff.',
    );
  }
  loaded.setErrorClass(FusediffError);
  addon = loaded;
  return loaded;
}
