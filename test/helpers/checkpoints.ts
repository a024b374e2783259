/**
 * Builds the unet_basic fixture model in each checkpoint layout and weight form of the
 * public checkpoints (model or pipeline folder; safetensors, legacy names, shards, fp16
 * variants, PyTorch .bin), and runs the reference forward that every form must reproduce.
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadUNet, Tensor, type LoadUNetOptions } from '../../lib/index.js';
import { float32, numbers, readSafetensors, roundToHalf, writeSafetensors, type TensorToWrite } from './safetensors.js';

export const BASIC = path.join(__dirname, '../fixtures/diffusers/models/unet_basic');
export const TORCH_BIN = path.join(__dirname, '../fixtures/torch-bin');
export const WEIGHTS = 'diffusion_pytorch_model.safetensors';

const SCHEDULER = { _class_name: 'DDPMScheduler', num_train_timesteps: 1000, beta_schedule: 'linear' };

/** unet_basic's weights, in file order. */
export function basicWeights(): TensorToWrite[] {
  return [...readSafetensors(path.join(BASIC, WEIGHTS))].map(([name, t]) => ({ name, shape: t.shape, data: float32(t) }));
}

/** Diffusers' names before 0.14 for attention projections. */
export function legacyName(name: string): string {
  return name.replace('.to_q.', '.query.').replace('.to_k.', '.key.').replace('.to_v.', '.value.').replace('.to_out.0.', '.proj_attn.');
}

export type Layout = 'model' | 'pipeline';

/**
 * A model folder at `dir` in `layout`, its UNet weights written by `weights` into the UNet's
 * folder; returns that folder.
 */
export function makeModel(dir: string, layout: Layout, weights: (unet: string) => void): string {
  const unet = layout === 'model' ? dir : path.join(dir, 'unet');
  mkdirSync(unet, { recursive: true });
  copyFileSync(path.join(BASIC, 'config.json'), path.join(unet, 'config.json'));
  const scheduler = layout === 'model' ? dir : path.join(dir, 'scheduler');
  mkdirSync(scheduler, { recursive: true });
  writeFileSync(path.join(scheduler, 'scheduler_config.json'), JSON.stringify(SCHEDULER));
  if (layout === 'pipeline')
    writeFileSync(
      path.join(dir, 'model_index.json'),
      JSON.stringify({ _class_name: 'DDPMPipeline', scheduler: ['diffusers', 'DDPMScheduler'], unet: ['diffusers', 'UNet2DModel'] }),
    );
  weights(unet);
  return unet;
}

/** Weight writers, one per form a public checkpoint's weights come in. */
export const weightForms: Record<string, { variant?: string; half?: boolean; write: (unet: string) => void }> = {
  safetensors: { write: (unet) => copyFileSync(path.join(BASIC, WEIGHTS), path.join(unet, WEIGHTS)) },
  'safetensors, legacy attention names': {
    write: (unet) => writeSafetensors(path.join(unet, WEIGHTS), basicWeights().map((t) => ({ ...t, name: legacyName(t.name) }))),
  },
  'sharded safetensors': {
    write: (unet) => {
      const all = basicWeights();
      const parts = [all.slice(0, 50), all.slice(50)];
      const weightMap: Record<string, string> = {};
      parts.forEach((part, i) => {
        const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.safetensors`;
        writeSafetensors(path.join(unet, file), part);
        for (const t of part) weightMap[t.name] = file;
      });
      writeFileSync(path.join(unet, `${WEIGHTS}.index.json`), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    },
  },
  'fp16 safetensors variant': {
    variant: 'fp16',
    half: true,
    write: (unet) =>
      writeSafetensors(path.join(unet, 'diffusion_pytorch_model.fp16.safetensors'), basicWeights().map((t) => ({ ...t, dtype: 'F16' as const }))),
  },
  'PyTorch .bin': {
    write: (unet) => copyFileSync(path.join(TORCH_BIN, 'unet_basic/diffusion_pytorch_model.bin'), path.join(unet, 'diffusion_pytorch_model.bin')),
  },
  'PyTorch .bin, legacy names, strided and shared storages': {
    write: (unet) => copyFileSync(path.join(TORCH_BIN, 'unet_basic/legacy_views.bin'), path.join(unet, 'diffusion_pytorch_model.bin')),
  },
  'sharded PyTorch .bin': { write: (unet) => cpSync(path.join(TORCH_BIN, 'unet_basic/sharded'), unet, { recursive: true }) },
  'fp16 PyTorch .bin variant': {
    variant: 'fp16',
    half: true,
    write: (unet) =>
      copyFileSync(path.join(TORCH_BIN, 'unet_basic/diffusion_pytorch_model.fp16.bin'), path.join(unet, 'diffusion_pytorch_model.fp16.bin')),
  },
};

/** unet_basic's weights rounded to half precision, as float32 safetensors: the reference of fp16 variants. */
export function writeHalfRoundedWeights(unet: string): void {
  writeSafetensors(path.join(unet, WEIGHTS), basicWeights().map((t) => ({ ...t, data: roundToHalf(t.data) })));
}

/** The forward of the model at `dir` on unet_basic's first fixture input set. */
export async function referenceForward(dir: string, options: LoadUNetOptions = {}): Promise<Float32Array> {
  const cases = JSON.parse(readFileSync(path.join(BASIC, 'cases.json'), 'utf8')) as { input_sets: { prefix: string }[] };
  const io = readSafetensors(path.join(BASIC, 'io.safetensors'));
  const prefix = cases.input_sets[0].prefix;
  const sample = io.get(`${prefix}sample`)!;
  const t = numbers(io.get(`${prefix}timestep`)!);
  const unet = await loadUNet(dir, options);
  const x = Tensor.fromFloat32(float32(sample), sample.shape);
  try {
    const y = await unet.forward(x, t.length === 1 ? t[0] : t);
    const out = await y.toFloat32Array();
    y.dispose();
    return out;
  } finally {
    x.dispose();
    unet.dispose();
  }
}

/** True when the two outputs are the same bits. */
export function identical(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
