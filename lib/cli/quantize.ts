/** `fusediff quantize <model-dir> <out-dir>`: a float model as a fusediff-int8 folder. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { quantizeUNet } from '../unet/quantize.js';
import { UsageError, type Command, type ParsedArgs } from './args.js';

export const quantize: Command = {
  name: 'quantize',
  summary: 'Write an INT8 copy of a model: per-output-channel int8 weights (fusediff-int8), ~4x smaller, faster on CPUs.',
  usage: 'fusediff quantize MODEL_DIR OUT_DIR [options]',
  notes: [
    'MODEL_DIR is a diffusers pipeline folder (model_index.json) or a UNet folder (config.json); OUT_DIR gets',
    'the same layout with int8 weights and a "quantization" entry in config.json. conv_in, conv_out and the',
    'time-embedding MLP stay float32 by default (see README, "INT8 and BF16"). Load the result with',
    'loadUNet/loadPipeline or `fusediff generate --model OUT_DIR`.',
  ].join('\n'),
  options: {
    float: { type: 'string', value: 'LAYER[,LAYER...]', help: 'layers kept float32, replacing the default list (diffusers names)' },
    'max-weight-error': { type: 'number', help: 'layers whose relative weight error exceeds this stay float', default: 0.05 },
    overwrite: { type: 'boolean', help: 'write into a non-empty OUT_DIR' },
  },
  maxPositionals: 2,
  run,
};

async function run({ options: o, positionals }: ParsedArgs): Promise<number> {
  if (positionals.length !== 2) throw new UsageError('quantize needs MODEL_DIR and OUT_DIR (see fusediff quantize --help)');
  const [modelDir, outDir] = positionals.map((p) => path.resolve(p));
  if (modelDir === outDir) throw new UsageError('OUT_DIR must differ from MODEL_DIR');
  if (!o.overwrite) {
    const entries = await fs.readdir(outDir).catch(() => [] as string[]);
    if (entries.length > 0) throw new UsageError(`${outDir} is not empty (use --overwrite)`);
  }
  const floatLayers = typeof o.float === 'string' ? o.float.split(',').map((s) => s.trim()).filter((s) => s.length > 0) : undefined;
  const r = await quantizeUNet(modelDir, { mode: 'int8', outDir, floatLayers, maxWeightError: o['max-weight-error'] as number });
  try {
    const int8 = r.layers.filter((l) => l.int8);
    const worst = int8.reduce((m, l) => Math.max(m, l.relativeError), 0);
    const summary = {
      outDir,
      weightBytes: r.weightBytes,
      int8Layers: int8.length,
      floatLayers: r.floatLayers,
      worstWeightError: worst,
    };
    if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
    else
      process.stdout.write(
        `wrote ${outDir}: ${int8.length} int8 layers (worst relative weight error ${worst.toFixed(4)}), ` +
          `${r.floatLayers.length} float32 (${r.floatLayers.join(', ')}), weights ${(r.weightBytes / 2 ** 20).toFixed(1)} MiB\n`,
      );
  } finally {
    r.unet.dispose();
  }
  return 0;
}
