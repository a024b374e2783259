// Generates an evaluation set of tiles with fusediff itself (the engine users run), for
// evaluate.py: `per-class` tiles of every class, written as two .npy files
// (<out>.images.npy uint8 [N, 32, 32, 4], <out>.labels.npy int64 [N]).
//
//   node training/generate_tiles.mjs --model DIR --sampler ddim --steps 50 --guidance 2 \
//        --per-class 200 --seed 1000 --out /work/fusediff-train/eval/teacher_ddim50
//   (--dtype int8 loads the UNet quantized at load)
//
// Needs the built package (npm run build). Seeds: tile i of the set uses seed + i, so every
// setting sees the same initial noise for the same tile.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadPipeline } from '../dist/index.js';

const { values: o } = parseArgs({
  options: {
    model: { type: 'string' },
    sampler: { type: 'string' },
    steps: { type: 'string', default: '1' },
    guidance: { type: 'string', default: '1' },
    'per-class': { type: 'string', default: '200' },
    classes: { type: 'string', default: '5' },
    seed: { type: 'string', default: '1000' },
    batch: { type: 'string', default: '50' },
    dtype: { type: 'string' },
    out: { type: 'string' },
  },
});
if (!o.model || !o.out) throw new Error('--model and --out are required');

const perClass = Number(o['per-class']);
const classes = Number(o.classes);
const batch = Number(o.batch);
const labels = Array.from({ length: perClass * classes }, (_, i) => Math.floor(i / perClass));
const pipe = await loadPipeline(o.model, o.dtype ? { dtype: o.dtype } : {});
const images = new Uint8Array(labels.length * 32 * 32 * 4);
const started = performance.now();
for (let i = 0; i < labels.length; i += batch) {
  const classLabels = labels.slice(i, i + batch);
  const res = await pipe.generate({
    sampler: o.sampler,
    steps: Number(o.steps),
    guidanceScale: Number(o.guidance),
    classLabels,
    seeds: classLabels.map((_, k) => Number(o.seed) + i + k),
    channels: 4,
  });
  res.images.forEach((img, k) => images.set(img.data, (i + k) * 32 * 32 * 4));
}
const seconds = (performance.now() - started) / 1000;
writeFileSync(`${o.out}.images.npy`, npy(images, '|u1', [labels.length, 32, 32, 4]));
writeFileSync(`${o.out}.labels.npy`, npy(new BigInt64Array(labels.map(BigInt)), '<i8', [labels.length]));
pipe.dispose?.();
console.log(`${labels.length} tiles in ${seconds.toFixed(1)} s -> ${o.out}.{images,labels}.npy`);

// NumPy .npy version 1.0: magic, header length, a Python-dict header padded to 64 bytes, data.
function npy(typed, descr, shape) {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength)]);
}
