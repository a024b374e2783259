/**
 * `fusediff generate`: images from a model as PNG files (image-<seed>.png) or one sprite
 * sheet, with manifest.json beside them and each image's record in its PNG text.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';
import { makeGrid } from '../image/grid.js';
import { decodePng, encodePng } from '../image/png.js';
import type { GeneratedImage } from '../pipeline/images.js';
import { resolveClassLabels } from '../pipeline/model_card.js';
import { SAMPLERS, type SamplerName } from '../pipeline/pipeline.js';
import { randomSeed } from '../random.js';
import { UsageError, type Command, type ParsedArgs } from './args.js';
import { fastDefaults } from './defaults.js';
import { imageRecord, type ImageRecord, type Manifest, type RunParameters } from './manifest.js';
import { modelName, openPipeline } from './model.js';
import { progressReporter } from './progress.js';
import { packageVersion } from './version.js';

export const generate: Command = {
  name: 'generate',
  summary: 'Generate images with a diffusion model and write them as PNG files or one sprite sheet, with a JSON manifest.',
  usage: 'fusediff generate [--model DIR] [options]',
  options: {
    model: { type: 'string', short: 'm', value: 'DIR', help: 'diffusers pipeline folder (default: the embedded model)' },
    sampler: { type: 'string', short: 's', value: 'NAME', help: `${SAMPLERS.join(', ')} (default: the fastest good one for the model)` },
    steps: { type: 'integer', short: 'n', help: 'sampling steps (default: the fastest good count for the sampler)' },
    seed: { type: 'integer', help: 'seed of the first image; image i uses seed + i (default: random)' },
    seeds: { type: 'integers', help: 'one seed per image' },
    count: { type: 'integer', short: 'c', help: 'number of images (default: 1, or the number of seeds/classes)' },
    class: { type: 'labels', help: 'class id or name (e.g. wall) for every image, or one per image (class-conditional models)' },
    guidance: { type: 'number', short: 'g', help: "classifier-free guidance scale (1: none; default: the model's own, else none)" },
    eta: { type: 'number', help: "DDIM's eta" },
    channels: { type: 'integer', help: '3 (RGB) or 4 (RGBA)' },
    tileable: { type: 'boolean', help: 'seamlessly tiling images' },
    int8: { type: 'boolean', help: 'INT8 inference' },
    device: { type: 'string', value: 'cpu|cuda', help: 'where to run', default: 'cpu' },
    init: { type: 'string', value: 'FILE.png', help: 'start from this image (img2img)' },
    strength: { type: 'number', help: 'how far from the init image to go, in (0, 1]', default: 0.8 },
    out: { type: 'string', short: 'o', value: 'DIR', help: 'folder for the images and manifest.json', default: '.' },
    grid: { type: 'string', value: 'FILE.png', help: 'write one sprite sheet instead of one file per image' },
    columns: { type: 'integer', help: 'sheet columns (default: a near-square sheet)' },
    padding: { type: 'integer', help: 'pixels around each sheet cell (transparent for RGBA)', default: 0 },
    scale: { type: 'integer', help: 'enlarge every sheet cell N times by pixel repetition (pixel-art previews), 1-16', default: 1 },
    manifest: { type: 'string', value: 'FILE', help: 'manifest path (default: manifest.json beside the images)' },
  },
  notes: [
    'Every image is recorded in the manifest (and in its PNG "fusediff" text chunk) with its seed and',
    'the exact arguments ("remake") that make it again alone. --json prints the manifest on stdout.',
  ].join('\n'),
  run,
};

async function run({ options: o }: ParsedArgs): Promise<number> {
  const sampler = o.sampler as SamplerName | undefined;
  if (sampler !== undefined && !SAMPLERS.includes(sampler)) throw new UsageError(`unknown sampler "${sampler}" (use ${SAMPLERS.join(', ')})`);
  if (o.seed !== undefined && o.seeds !== undefined) throw new UsageError('give --seed or --seeds, not both');
  if (o.channels !== undefined && o.channels !== 3 && o.channels !== 4) throw new UsageError('--channels must be 3 or 4');
  if (o.grid === undefined && (o.columns !== undefined || o.padding !== 0 || o.scale !== 1)) throw new UsageError('--columns, --padding and --scale need --grid');
  const seedList = o.seeds as number[] | undefined;
  const classList = o.class as (number | string)[] | undefined;
  const perImageClasses = classList && classList.length > 1 ? classList : undefined;
  const count = (o.count as number | undefined) ?? seedList?.length ?? perImageClasses?.length ?? 1;
  if (count < 1) throw new UsageError('--count must be at least 1');
  if (seedList && seedList.length !== count) throw new UsageError(`${seedList.length} seeds for ${count} images`);
  if (perImageClasses && perImageClasses.length !== count) throw new UsageError(`${perImageClasses.length} classes for ${count} images`);
  const baseSeed = (o.seed as number | undefined) ?? randomSeed();
  const seeds = seedList ?? Array.from({ length: count }, (_, i) => baseSeed + i);
  const classArgs = classList ? (perImageClasses ?? new Array<number | string>(count).fill(classList[0])) : undefined;

  // Read the init image before the (slower) model load, so a bad file fails fast.
  let initImages: GeneratedImage[] | undefined;
  const initFile = o.init === undefined ? undefined : path.resolve(o.init as string);
  if (initFile) {
    const image = decodePng(await readFile(initFile));
    initImages = new Array<GeneratedImage>(count).fill(image);
  }

  const pipe = await openPipeline(o.model as string | undefined, { int8: o.int8 as boolean | undefined, device: o.device as string });
  try {
    // Names become ids here, so the manifest's records (and their remake commands) hold ids.
    const classes = classArgs ? resolveClassLabels(classArgs, pipe.card) : undefined;
    const chosen = fastDefaults(pipe, sampler);
    const steps = (o.steps as number | undefined) ?? chosen.steps;
    const reporter = progressReporter({ quiet: o.quiet === true, label: 'generate' });
    const res = await pipe.generate({
      seeds,
      classLabels: classes,
      sampler: chosen.sampler,
      steps,
      guidanceScale: o.guidance as number | undefined,
      eta: o.eta as number | undefined,
      channels: o.channels as 3 | 4 | undefined,
      tileable: o.tileable === true,
      init: initImages ? { images: initImages, strength: o.strength as number } : undefined,
      onProgress: (p) => reporter.onProgress(p),
    });
    reporter.done();
    const first = res.images[0];
    const params: RunParameters = {
      model: modelName(o.model as string | undefined),
      sampler: res.sampler,
      steps,
      width: first.width,
      height: first.height,
      channels: first.channels,
      tileable: o.tileable === true,
      // The scale used, also when it came from the model card: a remake must not depend on defaults.
      ...(res.guidanceScale !== undefined ? { guidance: res.guidanceScale } : {}),
      ...(o.eta !== undefined ? { eta: o.eta as number } : {}),
      ...(initFile ? { init: { file: initFile, strength: o.strength as number } } : {}),
    };
    const manifest = await writeOutputs(o, params, res.images, res.seeds, classes);
    manifest.stepsRun = res.steps;
    manifest.totalMs = Math.round(res.timings.totalMs);
    const manifestPath = path.resolve((o.manifest as string | undefined) ?? path.join(o.grid !== undefined ? path.dirname(path.resolve(o.grid as string)) : path.resolve(o.out as string), 'manifest.json'));
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
    if (o.json) process.stdout.write(JSON.stringify({ manifest: manifestPath, ...manifest }) + '\n');
    else if (!o.quiet) {
      const dir = path.dirname(manifestPath);
      const files = manifest.grid ? [manifest.grid.file] : manifest.images.map((r) => r.file);
      for (const f of files) process.stdout.write(`${path.join(dir, f)}\n`);
      process.stdout.write(`${manifestPath}\n`);
    }
    return 0;
  } finally {
    pipe.dispose();
  }
}

async function writeOutputs(
  o: ParsedArgs['options'],
  params: RunParameters,
  images: GeneratedImage[],
  seeds: number[],
  classes: number[] | undefined,
): Promise<Manifest> {
  const manifest: Manifest = { fusediff: packageVersion(), createdAt: new Date().toISOString(), parameters: params, images: [], stepsRun: 0, totalMs: 0 };
  if (o.grid !== undefined) {
    const file = path.resolve(o.grid as string);
    const grid = makeGrid(images, { columns: o.columns as number | undefined, padding: o.padding as number, scale: o.scale as number });
    manifest.images = images.map((_, i) => ({ ...imageRecord(params, `image-${seeds[i]}.png`, seeds[i], classes?.[i]), cell: grid.cells[i] }));
    manifest.grid = { file: path.basename(file), columns: grid.columns, rows: grid.rows, padding: o.padding as number, scale: o.scale as number, width: grid.image.width, height: grid.image.height };
    await fs.mkdir(path.dirname(file), { recursive: true }).catch(ioError(file));
    await writeFile(file, encodePng(grid.image, { text: { fusediff: JSON.stringify({ parameters: params, grid: manifest.grid, images: manifest.images }) } }));
    return manifest;
  }
  const dir = path.resolve(o.out as string);
  await fs.mkdir(dir, { recursive: true }).catch(ioError(dir));
  const records: ImageRecord[] = [];
  for (const [i, image] of images.entries()) {
    const record = imageRecord(params, `image-${seeds[i]}.png`, seeds[i], classes?.[i]);
    await writeFile(path.join(dir, record.file), encodePng(image, { text: { fusediff: JSON.stringify(record) } }));
    records.push(record);
  }
  manifest.images = records;
  return manifest;
}

function ioError(file: string): (e: Error) => never {
  return (e) => {
    throw new FusediffError('E_IO', `cannot write ${file}: ${e.message}`);
  };
}

async function writeFile(file: string, data: string | Uint8Array): Promise<void> {
  await fs.writeFile(file, data).catch(ioError(file));
}

async function readFile(file: string): Promise<Buffer> {
  return fs.readFile(file).catch((e: Error) => {
    throw new FusediffError('E_IO', `cannot read ${file}: ${e.message}`);
  });
}
