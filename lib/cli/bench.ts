/**
 * `fusediff bench [model]`: a quick forward timing — one warm-up forward (plans the arena,
 * packs caches), then the median (and min/max) of N forwards of a random batch at the
 * model's sample size.
 */
import path from 'node:path';
import { Tensor } from '../tensor.js';
import { loadUNet } from '../unet/load.js';
import type { UNet } from '../unet/unet.js';
import { Generator } from '../random.js';
import { UsageError, type Command, type ParsedArgs } from './args.js';
import { isPipelineFolder, loadOptions, modelName, openPipeline } from './model.js';

export const bench: Command = {
  name: 'bench',
  summary: 'Time the forward pass of a model: median of N runs.',
  usage: 'fusediff bench [MODEL_DIR] [options]',
  notes: 'MODEL_DIR is a pipeline or UNet folder; default: the embedded model.',
  options: {
    runs: { type: 'integer', short: 'r', help: 'timed forwards', default: 10 },
    batch: { type: 'integer', short: 'b', help: 'batch size', default: 1 },
    int8: { type: 'boolean', help: 'INT8 inference' },
    device: { type: 'string', value: 'cpu|cuda', help: 'where to run', default: 'cpu' },
  },
  maxPositionals: 1,
  run,
};

async function run({ options: o, positionals }: ParsedArgs): Promise<number> {
  const runs = o.runs as number;
  const batch = o.batch as number;
  if (runs < 1 || runs > 10_000) throw new UsageError('--runs must be in [1, 10000]');
  if (batch < 1 || batch > 4096) throw new UsageError('--batch must be in [1, 4096]');
  const dir = positionals[0];
  const flags = { int8: o.int8 as boolean | undefined, device: o.device as string };
  let unet: UNet;
  let dispose: () => void;
  if (dir === undefined || isPipelineFolder(dir)) {
    const pipe = await openPipeline(dir, flags);
    unet = pipe.unet;
    dispose = () => pipe.dispose();
  } else {
    unet = await loadUNet(path.resolve(dir), loadOptions(flags));
    dispose = () => unet.dispose();
  }
  try {
    const c = unet.config;
    const [h, w] = Array.isArray(c.sample_size) ? c.sample_size : [c.sample_size ?? 32, c.sample_size ?? 32];
    const x = await new Generator(0).randn([batch, c.in_channels, h, w]);
    const labels = c.num_class_embeds !== null ? { classLabels: new Array<number>(batch).fill(0) } : {};
    const once = async () => {
      const t0 = performance.now();
      (await unet.forward(x, 500, labels)).dispose();
      return performance.now() - t0;
    };
    await once();
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      ms.push(await once());
      if (!o.quiet && !o.json && process.stderr.isTTY) process.stderr.write(`\rbench: ${i + 1}/${runs}\x1b[K`);
    }
    if (!o.quiet && !o.json && process.stderr.isTTY) process.stderr.write('\n');
    x.dispose();
    const sorted = [...ms].sort((a, b) => a - b);
    const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
    const result = {
      model: modelName(dir),
      shape: [batch, c.in_channels, h, w],
      runs,
      kernels: unet.info.kernels,
      medianMs: median,
      minMs: sorted[0],
      maxMs: sorted[sorted.length - 1],
      imagesPerSecond: (batch * 1000) / median,
    };
    if (o.json) process.stdout.write(JSON.stringify(result) + '\n');
    else
      process.stdout.write(
        `forward [${result.shape.join(', ')}] on ${result.kernels}: median ${median.toFixed(2)} ms (min ${result.minMs.toFixed(2)}, max ${result.maxMs.toFixed(2)}, ${runs} runs), ${result.imagesPerSecond.toFixed(1)} images/s\n`,
      );
    return 0;
  } finally {
    dispose();
  }
}
