export { FusediffError, type FusediffErrorCode } from './errors.js';
export { Tensor } from './tensor.js';
export { UNet, type ForwardOptions, type UNetInfo } from './unet/unet.js';
export { loadUNet, expectedWeights, type LoadUNetOptions } from './unet/load.js';
export { parseUNet2DConfig, UNET2D_DEFAULTS, type UNet2DConfig, type DownBlockType, type UpBlockType } from './unet/config.js';
export { parsePythonJson } from './json.js';
export { memoryStats, runtimeInfo, setActivationMemoryLimit } from './runtime.js';
export type { WeightSpec, PlanDescription, PlanOp, PlanLinear } from './native.js';
export type { ExportOnnxOptions, ExportOnnxResult } from './onnx/export.js';
