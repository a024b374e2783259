// The embedded model: one sprite sheet of game tiles per class, one network evaluation per
// tile (a consistency model), written to tiles/<class>.png.
import { mkdirSync, writeFileSync } from 'node:fs';
import { encodePng, loadPipeline, makeGrid } from '../dist/index.js';

const pipe = await loadPipeline(); // no folder: the embedded 32x32 RGBA tile model
mkdirSync('tiles', { recursive: true });
for (const name of pipe.card.classNames) {
  const res = await pipe.generate({ classLabels: new Array(16).fill(name), seed: 1 });
  const sheet = makeGrid(res.images, { columns: 8, padding: 2 });
  writeFileSync(`tiles/${name}.png`, encodePng(sheet.image));
  console.log(`tiles/${name}.png: 16 tiles, ${res.steps} step, ${res.timings.totalMs.toFixed(0)} ms`);
}
pipe.dispose();
