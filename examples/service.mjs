// A pipeline inside a Node service: cancellable, with progress and previews, PNG out.
// Runs on a small fixture pipeline; pass another pipeline folder as the first argument.
import { writeFileSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPipeline, encodePng, makeGrid, FusediffError } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const model = process.argv[2] ?? path.join(here, '../test/fixtures/pipelines/ddim');
const out = mkdtempSync(path.join(os.tmpdir(), 'fusediff-example-'));

const pipe = await loadPipeline(model);          // load once, share between requests

// A request handler: one generation, cancelled when the client goes away.
async function handle(seed, signal) {
  const res = await pipe.generate({
    batchSize: 4,
    steps: 10,
    seed,
    signal,                                       // abort() -> rejects with code E_ABORTED
    previewEvery: 5,                              // p.preview: the predicted clean images
    onProgress: (p) => console.log(`step ${p.step}/${p.totalSteps} after ${p.elapsedMs.toFixed(0)} ms${p.preview ? ' (preview)' : ''}`),
  });
  // One sprite sheet with 2 columns and 1 px padding, its parameters in a PNG text chunk.
  const sheet = makeGrid(res.images, { columns: 2, padding: 1 });
  const file = path.join(out, `sheet-${seed}.png`);
  writeFileSync(file, encodePng(sheet.image, { text: { fusediff: JSON.stringify({ seeds: res.seeds, sampler: res.sampler }) } }));
  return file;
}

// Concurrent requests on one model are safe and give the same images as sequential ones.
const files = await Promise.all([handle(1), handle(2)]);
console.log('wrote', files.join(', '));

// A cancelled request:
const ac = new AbortController();
const cancelled = handle(3, ac.signal);
ac.abort();
try {
  await cancelled;
} catch (e) {
  if (!(e instanceof FusediffError && e.code === 'E_ABORTED')) throw e;
  console.log('cancelled:', e.code);
}

pipe.dispose();                                   // frees the weights; later use gives E_DISPOSED
