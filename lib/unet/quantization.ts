/**
 * The fusediff-int8 format and the policy of which layers stay float.
 *
 * A quantized model is an ordinary diffusers UNet2DModel folder whose
 * diffusion_pytorch_model.safetensors stores, for every quantized conv or linear layer,
 *   `<layer>.weight`        I8  with the layer's PyTorch shape ([out, in, kh, kw] or [out, in]),
 *                               values in [-127, 127]
 *   `<layer>.weight_scale`  F32 [out], finite and > 0:  weight[o, ...] = scale[o] * int8[o, ...]
 * and everything else (float layers, biases, norms, embeddings) as F32; its config.json has
 *   "quantization": { "format": "fusediff-int8", "version": 1,
 *                     "weights": "per-output-channel symmetric int8",
 *                     "activations": "dynamic per-image per-tensor asymmetric int8 (min/max), int32 accumulation",
 *                     "float_layers": [ ...layers kept float... ] }
 *
 * Policy (defaultFloatLayers): conv_in (3 input channels: few FLOPs, and the raw noise is the
 * input), conv_out (its output is the prediction itself), the time-embedding MLP
 * (time_embedding.linear_1/2, and class_embedding.linear_1/2 for class_embed_type
 * "timestep": batch-sized GEMMs, all cost and no gain) stay float32; every other conv and
 * linear layer (ResNet convs and shortcuts, down/upsampler convs, attention projections and
 * the ResNets' time_emb_proj) is int8. Attention's softmax and Q·Kᵀ / P·V always run in float32;
 * so do GroupNorm and SiLU. quantizeUNet can keep more layers float: by name
 * (floatLayers), by weight error (maxWeightError) and by measured output cosine on
 * calibration inputs.
 */
import { FusediffError } from '../errors.js';
import type { UNet2DConfig } from './config.js';

export const QUANTIZATION_FORMAT = 'fusediff-int8';
export const QUANTIZATION_VERSION = 1;
export const WEIGHT_SCHEME = 'per-output-channel symmetric int8';
export const ACTIVATION_SCHEME = 'dynamic per-image per-tensor asymmetric int8 (min/max), int32 accumulation';

export interface QuantizationEntry {
  format: typeof QUANTIZATION_FORMAT;
  version: number;
  weights: string;
  activations: string;
  float_layers: string[];
}

/** The layers the default policy keeps float32 for a config. */
export function defaultFloatLayers(config: UNet2DConfig): string[] {
  const layers = ['conv_in', 'conv_out', 'time_embedding.linear_1', 'time_embedding.linear_2'];
  if (config.class_embed_type === 'timestep') layers.push('class_embedding.linear_1', 'class_embedding.linear_2');
  return layers;
}

/** config.json's "quantization" entry, checked; null when absent. */
export function parseQuantization(raw: unknown, where: string): QuantizationEntry | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new FusediffError('E_CONFIG', `${where}: "quantization" must be an object`);
  const q = raw as Record<string, unknown>;
  if (q.format !== QUANTIZATION_FORMAT)
    throw new FusediffError('E_UNSUPPORTED', `${where}: quantization format ${JSON.stringify(q.format)} is not supported (this version reads "${QUANTIZATION_FORMAT}")`);
  if (q.version !== QUANTIZATION_VERSION)
    throw new FusediffError('E_UNSUPPORTED', `${where}: ${QUANTIZATION_FORMAT} version ${JSON.stringify(q.version)} is not supported (this version reads ${QUANTIZATION_VERSION})`);
  if (q.weights !== undefined && q.weights !== WEIGHT_SCHEME)
    throw new FusediffError('E_UNSUPPORTED', `${where}: quantization weights ${JSON.stringify(q.weights)} (supported: "${WEIGHT_SCHEME}")`);
  const floats = q.float_layers ?? [];
  if (!Array.isArray(floats) || !floats.every((v) => typeof v === 'string'))
    throw new FusediffError('E_CONFIG', `${where}: quantization.float_layers must be an array of layer names`);
  return {
    format: QUANTIZATION_FORMAT,
    version: QUANTIZATION_VERSION,
    weights: WEIGHT_SCHEME,
    activations: typeof q.activations === 'string' ? q.activations : ACTIVATION_SCHEME,
    float_layers: floats as string[],
  };
}
