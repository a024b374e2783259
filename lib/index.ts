export { FusediffError, type FusediffErrorCode } from './errors.js';
export { Tensor } from './tensor.js';
export { UNet, opFlops, type ForwardOptions, type UNetInfo, type ForwardProfile, type OpProfile } from './unet/unet.js';
export { loadUNet, expectedWeights, expectedPlan, type LoadUNetOptions } from './unet/load.js';
export {
  quantizeUNet,
  QUANTIZED_WEIGHTS_FILE,
  type QuantizeOptions,
  type QuantizeResult,
  type QuantizedLayerReport,
  type CalibrationInput,
} from './unet/quantize.js';
export {
  defaultFloatLayers,
  parseQuantization,
  QUANTIZATION_FORMAT,
  QUANTIZATION_VERSION,
  type QuantizationEntry,
} from './unet/quantization.js';
export { parseUNet2DConfig, UNET2D_DEFAULTS, type UNet2DConfig, type DownBlockType, type UpBlockType } from './unet/config.js';
export { parsePythonJson } from './json.js';
export { locateModel, findSchedulerConfig, type ModelLayout } from './checkpoint/layout.js';
export { convertCheckpoint, type ConvertCheckpointOptions, type ConvertCheckpointResult } from './checkpoint/convert.js';
export { memoryStats, runtimeInfo, setActivationMemoryLimit, setNumThreads, listDevices, type DeviceInfo } from './runtime.js';
export type { WeightSpec, PlanDescription, PlanOp, PlanLinear, Precision, CudaInfo, CudaDevice } from './native.js';
export { Generator, randn, randomSeed, MAX_SEED, type NoiseDraw } from './random.js';
export { affineStep, langevinStep, concatBatch, type AffineStepArgs, type LangevinStepArgs, type Coefficient, type NoiseInput } from './step.js';
export {
  makeBetas,
  alphasCumprod,
  rescaleZeroTerminalSnr,
  cosineBetas,
  linspaceF32,
  type BetaSchedule,
  type BetaConfig,
} from './schedules/betas.js';
export { roundHalfEven, integerTimesteps, floatTimesteps, type TimestepSpacing } from './schedules/spacing.js';
export { karrasSigmas, karrasSigmasForRamp, sigmaToT, trainingSigmas } from './schedules/karras.js';
export { VPSDE, SubVPSDE, VESDE, type Sde } from './schedules/sde.js';
export { qSample, velocity } from './schedules/forward.js';
export { schedulerFromConfig, SCHEDULER_CLASSES, type SchedulerClassName, type AnyScheduler } from './schedulers/index.js';
export type { Scheduler, SchedulerOutput, StepOptions } from './schedulers/types.js';
export { DDPMScheduler, DDPM_DEFAULTS, type DDPMSchedulerConfig, type DDPMVarianceType, type PredictionType } from './schedulers/ddpm.js';
export { DDIMScheduler, DDIM_DEFAULTS, type DDIMSchedulerConfig, type DDIMStepOptions } from './schedulers/ddim.js';
export { CMStochasticIterativeScheduler, CM_DEFAULTS, type CMStochasticIterativeSchedulerConfig } from './schedulers/consistency.js';
export { EulerDiscreteScheduler, EULER_DEFAULTS, type EulerDiscreteSchedulerConfig, type EulerStepOptions } from './schedulers/euler.js';
export {
  EulerAncestralDiscreteScheduler,
  EULER_ANCESTRAL_DEFAULTS,
  type EulerAncestralDiscreteSchedulerConfig,
} from './schedulers/euler_ancestral.js';
export { DPMSolverMultistepScheduler, DPM_DEFAULTS, type DPMSolverMultistepSchedulerConfig } from './schedulers/dpm_solver_multistep.js';
export { ScoreSdeVeScheduler, SDE_VE_DEFAULTS, type ScoreSdeVeSchedulerConfig, type SdeVeOutput } from './schedulers/score_sde_ve.js';
export { ScoreSdeVpScheduler, SDE_VP_DEFAULTS, type ScoreSdeVpSchedulerConfig } from './schedulers/score_sde_vp.js';
export { asModelFn, evaluate, type Model, type ModelFn, type GuidanceOptions, type ModelEvaluation } from './sampling/model.js';
export { sampleLoop, initialNoise, type SampleLoopOptions, type SampleLoopResult, type Progress, type PreviewOptions } from './sampling/loop.js';
export { sampleSde, forwardSde, type SdeSampleOptions, type SdeSampleResult, type SdeSamplerMethod, type ForwardSdeOptions } from './sampling/sde.js';
export { loadPipeline, Pipeline, SAMPLERS, type SamplerName, type GenerateOptions, type GenerateResult } from './pipeline/pipeline.js';
export { embeddedModelDir, EMBEDDED_MODELS, type EmbeddedModelName } from './pipeline/embedded.js';
export type { ModelCard } from './pipeline/model_card.js';
export { toImages, fromImages, type GeneratedImage, type SampleRange } from './pipeline/images.js';
export { encodePng, decodePng, readPngText, type EncodePngOptions } from './image/png.js';
export { makeGrid, type Grid, type GridOptions } from './image/grid.js';
export type { ExportOnnxOptions, ExportOnnxResult } from './onnx/export.js';
export { exportOnnx } from './onnx/command.js';
