/**
 * `fusediff info <model>`: what a model is and what it costs — config summary, parameter
 * count, the samplers its scheduler supports, and its memory: weights as loaded (measured
 * from the engine's own counters) and activations of one forward at its sample size; and the
 * devices of this machine (the CPU; CUDA devices, or why there are none).
 */
import path from 'node:path';
import { loadUNet } from '../unet/load.js';
import type { UNet } from '../unet/unet.js';
import { listDevices, memoryStats } from '../runtime.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import { type Command, type ParsedArgs } from './args.js';
import { fastDefaults } from './defaults.js';
import { isPipelineFolder, loadOptions, modelName, openPipeline } from './model.js';

export const info: Command = {
  name: 'info',
  summary: 'Describe a model: config, parameter count, supported samplers, memory.',
  usage: 'fusediff info [MODEL_DIR] [options]',
  notes: 'MODEL_DIR is a diffusers pipeline folder (model_index.json) or a UNet folder (config.json); default: the embedded model.',
  options: {
    batch: { type: 'integer', help: 'batch size for the activation memory figure', default: 1 },
  },
  maxPositionals: 1,
  run,
};

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 3 : 1)} MiB`;
}

async function run({ options: o, positionals }: ParsedArgs): Promise<number> {
  const dir = positionals[0];
  const before = memoryStats().liveBytes;
  let pipe: Pipeline | undefined;
  let unet: UNet;
  if (dir === undefined || isPipelineFolder(dir)) {
    pipe = await openPipeline(dir);
    unet = pipe.unet;
  } else {
    unet = await loadUNet(path.resolve(dir), loadOptions({}));
  }
  try {
    const weightBytes = memoryStats().liveBytes - before;
    const c = unet.config;
    const size = Array.isArray(c.sample_size) ? c.sample_size : [c.sample_size, c.sample_size];
    const [h, w] = size as (number | null)[];
    const batch = o.batch as number;
    const activationBytes = typeof h === 'number' && typeof w === 'number' ? unet.activationBytes(batch, h, w) : null;
    const { devices, cuda } = await listDevices();
    const result = {
      model: modelName(dir),
      kind: pipe ? 'pipeline' : 'unet',
      unet: {
        sampleSize: h === w ? h : [h, w],
        inChannels: c.in_channels,
        outChannels: c.out_channels,
        blockOutChannels: c.block_out_channels,
        layersPerBlock: c.layers_per_block,
        downBlockTypes: c.down_block_types,
        upBlockTypes: c.up_block_types,
        timeEmbeddingType: c.time_embedding_type,
        numClassEmbeds: c.num_class_embeds,
        classEmbedType: c.class_embed_type,
      },
      parameters: unet.info.parameterCount,
      kernels: unet.info.kernels,
      dtype: unet.info.dtype,
      quantization: unet.info.quantization,
      opPrecisions: unet.info.opPrecisions,
      memory: { weightBytes, activationBytes, activationBatch: batch },
      devices,
      cuda: { available: cuda.available, library: cuda.library, build: cuda.build, reason: cuda.reason },
      ...(pipe
        ? {
            scheduler: pipe.schedulerClass,
            samplers: pipe.samplers,
            defaultSampler: pipe.defaultSampler,
            fastest: fastDefaults(pipe),
            card: pipe.card,
          }
        : {}),
    };
    if (o.json) {
      process.stdout.write(JSON.stringify(result) + '\n');
      return 0;
    }
    const u = result.unet;
    const lines: [string, string][] = [
      ['model', `${result.model} (${result.kind})`],
      ['UNet2DModel', `${h}x${w} samples, ${u.inChannels} -> ${u.outChannels} channels, blocks [${u.blockOutChannels.join(', ')}] x ${u.layersPerBlock} layers`],
      ['down blocks', u.downBlockTypes.join(', ')],
      ['up blocks', u.upBlockTypes.join(', ')],
      ['conditioning', `${u.timeEmbeddingType} time embedding${u.numClassEmbeds !== null ? `, ${u.numClassEmbeds} classes` : u.classEmbedType !== null ? `, ${u.classEmbedType} class embedding` : ''}`],
      ['parameters', result.parameters.toLocaleString('en-US')],
      ['weights', `${mib(weightBytes)} in memory`],
      ['activations', activationBytes === null ? 'unknown (no sample_size)' : `${mib(activationBytes)} per forward at batch ${batch}`],
      ['kernels', result.kernels],
      [
        'precision',
        result.quantization
          ? `${result.quantization.format} v${result.quantization.version}: ${result.opPrecisions.int8} int8 ops, ${result.opPrecisions.float32} float32 (${result.quantization.float_layers.join(', ') || 'none'})`
          : result.dtype,
      ],
      ['devices', devices.map((d) => (d.device === 'cpu' ? 'cpu' : `${d.device} ${d.name} (compute ${d.computeCapability}, ${mib(d.totalMemory ?? 0)})`)).join('; ')],
    ];
    if (!cuda.available) lines.push(['cuda', `unavailable: ${cuda.reason}`]);
    if (pipe) {
      const card = pipe.card;
      if (card.description) lines.splice(1, 0, ['about', card.description]);
      if (card.classNames) lines.push(['classes', `${card.classNames.map((n, i) => `${i} ${n}`).join(', ')}${card.nullClassLabel !== undefined ? ` (${card.nullClassLabel}: unconditional)` : ''}`]);
      if (card.defaultGuidanceScale !== undefined) lines.push(['guidance', `${card.defaultGuidanceScale} by default`]);
      lines.push(['scheduler', pipe.schedulerClass]);
      lines.push(['samplers', `${pipe.samplers.join(', ')} (default ${pipe.defaultSampler}; CLI default ${result.fastest!.sampler}, ${result.fastest!.steps} steps)`]);
    }
    const width = Math.max(...lines.map(([k]) => k.length));
    for (const [k, v] of lines) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    return 0;
  } finally {
    if (pipe) pipe.dispose();
    else unet.dispose();
  }
}
