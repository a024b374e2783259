// npm run test:cuda: the GPU checks of the CUDA backend, on a machine with an NVIDIA GPU
// (compute capability 8.0+) and the addon built with the CUDA toolkit (npm ci / npm run
// build:native). Not part of npm test. Designed for under 5 minutes on one H200:
//   1. build/fusediff_cuda_tests: every CUDA op against the CPU reference (fp32, tf32, bf16),
//      bit-identical Philox noise, the whole UNet device vs CPU executor, and the forward
//      latency benchmark (ddpm-cifar10-32 config at batch 1 and 64, cd_imagenet64_l2 config at
//      batch 1 and 16, seeded random weights; TF32 and fp32). This binary needs no Node:
//      FUSEDIFF_CUDA_LIBRARY=build/Release/libfusediff_cuda.so build/fusediff_cuda_tests;
//   2. dist-gpu/checks.js (test/gpu/checks.ts bundled; plain Node, no vitest): the diffusers
//      fixtures (UNet forwards, end-to-end samplings) on CUDA (fp32 at the fixtures' own
//      tolerances, TF32/BF16 at the relative tolerances of test/helpers/device.ts), whole
//      samplings CPU vs CUDA with the same seeds, one-step consistency images/s;
//   3. the training recipe end to end on the GPU (training/smoke_test.py --device cuda, needs
//      dist/ and a python3 whose PyTorch sees the GPU; reported as not run otherwise).
// Writes every figure to bench/results-cuda.md. Without a usable GPU it exits 1 with one line.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
let addon;
try {
  addon = require('node-gyp-build')(process.cwd());
} catch (e) {
  console.error(`test:cuda: the addon is not built (${e.message.split('\n')[0]}); run npm run build:native`);
  process.exit(1);
}
const info = await addon.cudaInfo();
if (!info.available) {
  console.error(`test:cuda: no usable CUDA GPU: ${info.reason}`);
  process.exit(1);
}
const started = Date.now();
const failures = [];
const resultsJson = path.join(os.tmpdir(), `fusediff-gpu-results-${process.pid}.json`);
rmSync(resultsJson, { force: true });
const dev = info.devices[0];
console.log(`== CUDA: ${dev.name} (compute ${dev.computeCapability}, ${(dev.totalMemory / 2 ** 30).toFixed(0)} GiB); ${info.build}`);

// 1. Op-level checks.
const opResults = [];
const benchResults = [];
const binary = path.join('build', 'fusediff_cuda_tests');
if (!existsSync(binary)) {
  failures.push(`${binary} is missing (build with a CUDA toolkit: npm run build:native)`);
} else {
  console.log(`\n== ${binary}`);
  const t0 = Date.now();
  const r = spawnSync(binary, [], { encoding: 'utf8', maxBuffer: 64 << 20 });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  for (const line of (r.stdout ?? '').split('\n')) {
    const m = line.match(/^RESULT (\S+) (\S+) (\S+)$/);
    if (m) opResults.push({ name: m[1], error: Number(m[2]), tolerance: Number(m[3]) });
    const b = line.match(/^BENCH (.+) \| (\S+) \| (\S+) \| (\S+)$/);
    if (b) benchResults.push([b[1], b[2], b[3], b[4]]);
  }
  if (r.status !== 0) failures.push(`op checks (${binary}) failed`);
  console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

// 2. The API-level checks: a plain Node program (dist-gpu/checks.js, bundled from
// test/gpu/checks.ts), so that a GPU machine needs no dev dependencies. Rebuilt here when
// tsup is installed.
let figures = { results: {}, failures: [] };
const checks = path.join('dist-gpu', 'checks.js');
if (existsSync(path.join('node_modules', 'tsup'))) {
  const b = spawnSync('npx', ['tsup', '--config', 'test/gpu/tsup.config.ts', '--silent'], { stdio: 'inherit' });
  if (b.status !== 0) failures.push('bundling test/gpu/checks.ts failed');
}
if (!existsSync(checks)) {
  failures.push(`${checks} is missing (npx tsup --config test/gpu/tsup.config.ts)`);
} else {
  console.log(`\n== ${checks}: fixtures on CUDA, samplings CPU vs CUDA, one-step consistency images/s`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [checks, resultsJson], { stdio: 'inherit' });
  if (r.status !== 0) failures.push('API checks failed');
  if (existsSync(resultsJson)) figures = JSON.parse(readFileSync(resultsJson, 'utf8'));
  rmSync(resultsJson, { force: true });
  console.log(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
}

// 3. The training recipe on the GPU: PyTorch is a dev tool, so a machine without a CUDA
// PyTorch skips this (said in the results), but one that has it must pass.
let recipe = 'not run';
const probe = 'import sys, numpy, PIL, torch; sys.exit(0 if torch.cuda.is_available() else 1)';
const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['-c', probe]).status === 0);
if (!python) {
  recipe = 'not run: no python3 with NumPy, Pillow and a PyTorch that sees the GPU';
} else if (!existsSync(path.join('dist', 'index.js'))) {
  failures.push('dist/index.js is missing for the recipe smoke test (npm run build)');
} else {
  console.log('\n== training/smoke_test.py --device cuda');
  const t0 = Date.now();
  const r = spawnSync(python, ['smoke_test.py', '--device', 'cuda'], { cwd: 'training', stdio: 'inherit' });
  recipe = r.status === 0 ? `passed (${((Date.now() - t0) / 1000).toFixed(0)} s)` : '**failed**';
  if (r.status !== 0) failures.push('training recipe on CUDA failed');
}

// The results file.
let commit = 'unknown';
try {
  commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  if (execFileSync('git', ['status', '--porcelain', '--', 'lib', 'native', 'cuda', 'test'], { encoding: 'utf8' }).trim()) commit += ' (with uncommitted changes)';
} catch {}
const lines = [
  '# CUDA results (npm run test:cuda)',
  '',
  `Commit ${commit}, ${new Date().toISOString()}; ${dev.name} (compute ${dev.computeCapability}, ${dev.multiprocessors} SMs, ${(dev.totalMemory / 2 ** 30).toFixed(0)} GiB); ${info.build}; ${os.cpus().length} CPU threads.`,
  `Total wall time ${((Date.now() - started) / 1000).toFixed(0)} s. ${failures.length ? `**FAILED**: ${failures.join('; ')}` : 'All checks passed.'}`,
  '',
  `Training recipe on CUDA (training/smoke_test.py --device cuda): ${recipe}.`,
  '',
];
const section = (title, rows, columns) => {
  if (!rows.length) return;
  lines.push(`## ${title}`, '', `| ${columns.join(' | ')} |`, `| ${columns.map(() => '---').join(' | ')} |`);
  for (const r of rows) lines.push(`| ${r.join(' | ')} |`);
  lines.push('');
};
section(
  'Forward latency (CUDA, seeded random weights; upload + forward + download, as UNet.forward)',
  benchResults,
  ['case', 'median ms', 'min ms', 'images/s'],
);
const res = figures.results ?? {};
const rows = (key, columns) => Object.entries(res[key] ?? {}).map(([k, v]) => [k, ...columns.map((c) => v[c])]);
section('One-step consistency sampling (Pipeline.generate end to end)', rows('consistency', ['medianMs', 'imagesPerSecond']), [
  'case',
  'median ms',
  'images/s',
]);
section('Whole samplings, CUDA vs CPU, same seed (8-bit image levels)', rows('samplings CPU vs CUDA', ['maxLevels', 'meanLevels', 'result']), [
  'case',
  'max |diff|',
  'mean |diff|',
  '',
]);
section('diffusers UNet fixtures on CUDA (max abs error vs diffusers float64)', rows('unet fixtures', ['maxAbsError', 'tolerance', 'result']), [
  'input set',
  'max abs error',
  'tolerance',
  '',
]);
section('diffusers end-to-end samplings on CUDA (every step, vs diffusers float64)', rows('e2e fixtures', ['maxAbsError', 'errorOverTolerance', 'result']), [
  'case',
  'max abs error',
  'error / tolerance',
  '',
]);
section(
  'Ops, CUDA vs CPU reference (max abs error; tolerance)',
  opResults.map((r) => [r.name, r.error.toExponential(2), r.tolerance.toExponential(2), r.error <= r.tolerance ? 'ok' : '**over**']),
  ['check', 'max abs error', 'tolerance', ''],
);
writeFileSync(path.join('bench', 'results-cuda.md'), lines.join('\n'));
console.log(`\nwrote bench/results-cuda.md (${((Date.now() - started) / 1000).toFixed(0)} s)`);
if (failures.length) {
  console.error(`test:cuda: FAILED: ${failures.join('; ')}`);
  process.exit(1);
}
