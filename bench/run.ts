/**
 * `npm run bench [-- case ...]`: fusediff vs onnxruntime-node on identical weights and inputs.
 *
 * Knobs (environment):
 *   BENCH_QUICK=1         1 warm-up + 3 runs (a smoke test, not for quoting)
 *   BENCH_RUNS, BENCH_WARMUP, BENCH_LAYER_RUNS   explicit counts (defaults: per case, 41 for
 *                         cifar10-32-b1 and 15 for the others; 3; 15)
 *   BENCH_LAYERS=n        dominant 3x3 layers timed per case (default 2; 0 = none)
 *   BENCH_BREAKDOWN=n     time every conv of the plan alone, n runs each (default 3, quick 1; 0 = skip)
 *   BENCH_CASES=a,b       same as naming cases on the command line (ids or prefixes:
 *                         cifar10-32-b1, cifar10-32-b8, cd-imagenet64-b1; "cifar" = both cifar)
 *   BENCH_PEAK_GFLOPS     FP32 peak for the % columns (default: threads x 3.6 GHz x 32 FLOP/cycle, Zen 4)
 *   BENCH_LOWP=0          skip the INT8 / BF16 rows (bench/lowp-case.ts)
 *   BENCH_TORCH=0         skip the PyTorch peer (bench/torch-peer.ts; it runs where
 *                         BENCH_PYTHON, default /usr/bin/python3, imports torch)
 *   BENCH_OUT             results file (default bench/results.md for a full run, else bench/results-partial.md)
 *
 * The parent prepares model files (bench/.weights/) and runs each case in a child process,
 * so every case's peak RSS is its own and weight generation does not pollute it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runtimeInfo } from '../lib/index.js';
import { CASES, type BenchCase } from './cases.js';
import { prepareModel } from './model-files.js';
import { ortVersion } from './ort-session.js';
import { forwardTable, layerTable, markdownTable, resultsMarkdown, torchTable, type Environment } from './report.js';
import { runCase, type CaseOptions, type CaseResult } from './run-case.js';
import { lowpMarkdown, prepareInt8Folder, runInt8Folder, runLowpCase, type Int8FolderResult, type LowpResult } from './lowp-case.js';

const RESULT_MARKER = '@@bench-result ';
const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function intEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  if (!/^\d+$/.test(v)) throw new Error(`${name} must be a non-negative integer, got "${v}"`);
  return Number(v);
}

function caseOptions(c: BenchCase): CaseOptions {
  const quick = process.env.BENCH_QUICK === '1';
  return {
    warmup: intEnv('BENCH_WARMUP', quick ? 1 : 3),
    runs: Math.max(1, intEnv('BENCH_RUNS', quick ? 3 : c.runs)),
    layerRuns: Math.max(1, intEnv('BENCH_LAYER_RUNS', quick ? 3 : 15)),
    layers: intEnv('BENCH_LAYERS', 2),
    breakdownRuns: intEnv('BENCH_BREAKDOWN', quick ? 1 : 3),
    log,
  };
}

function selectCases(args: string[]): BenchCase[] {
  const wanted = args.length ? args : (process.env.BENCH_CASES ?? '').split(',').filter(Boolean);
  if (wanted.length === 0) return CASES;
  const picked = CASES.filter((c) => wanted.some((w) => c.id === w || c.id.startsWith(w)));
  if (picked.length === 0) throw new Error(`no benchmark case matches ${wanted.join(', ')}; cases: ${CASES.map((c) => c.id).join(', ')}`);
  return picked;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall back to os.cpus()
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    // The results files are this script's own output: a rewrite of them is not a code change.
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!bench/results*.md'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${head}+changes` : head;
  } catch {
    return 'unknown';
  }
}

async function runChild<T = CaseResult>(c: BenchCase, mode = '--child'): Promise<T> {
  const script = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, mode, c.id], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (code !== 0 || !line) reject(new Error(`case ${c.id} failed (exit ${code})`));
      else resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as T);
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child' || args[0] === '--lowp-child' || args[0] === '--int8-folder-child') {
    const c = CASES.find((k) => k.id === args[1]);
    if (!c) throw new Error(`unknown case ${args[1]}`);
    const o = caseOptions(c);
    const result =
      args[0] === '--child' ? await runCase(c, o) : args[0] === '--lowp-child' ? await runLowpCase(c, o.warmup, o.runs) : await runInt8Folder(c);
    process.stdout.write(`${RESULT_MARKER}${JSON.stringify(result)}\n`);
    return;
  }

  const cases = selectCases(args);
  const options = caseOptions(cases[0]);
  const loadAtStart = os.loadavg()[0];
  const info = runtimeInfo();
  for (const model of new Set(cases.map((c) => c.model))) await prepareModel(model, log);

  const results: CaseResult[] = [];
  for (const c of cases) results.push(await runChild(c));
  // INT8 / BF16 rows (BENCH_LOWP=0 skips them).
  const lowp: LowpResult[] = [];
  const folders: Int8FolderResult[] = [];
  if (process.env.BENCH_LOWP !== '0') {
    for (const c of cases) {
      log(`${c.id}: float32 / int8 / bf16 / ORT, rotating order`);
      lowp.push(await runChild<LowpResult>(c, '--lowp-child'));
      await prepareInt8Folder(c);
      folders.push(await runChild<Int8FolderResult>(c, '--int8-folder-child'));
    }
  }

  const threads = info.threads;
  const env: Environment = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    cpuModel: cpuModel(),
    cores: os.cpus().length,
    node: process.version,
    ort: ortVersion(),
    fusediff: (JSON.parse(readFileSync(path.resolve('package.json'), 'utf8')) as { version: string }).version,
    commit: commit(),
    threads,
    kernels: results[0]?.kernels ?? info.kernels,
    peakGflops: process.env.BENCH_PEAK_GFLOPS ? Number(process.env.BENCH_PEAK_GFLOPS) : threads * 3.6 * 32,
    peakNote: process.env.BENCH_PEAK_GFLOPS
      ? 'BENCH_PEAK_GFLOPS'
      : `${threads} cores x 3.6 GHz x 32 FLOP/cycle, Zen 4: one 512-bit FMA per cycle per core`,
    warmup: options.warmup,
    layerRuns: options.layerRuns,
    quick: process.env.BENCH_QUICK === '1',
    load: [loadAtStart, os.loadavg()[0]],
  };

  console.log(`\n${env.cpuModel}, ${threads} threads, node ${env.node}, onnxruntime-node ${env.ort}, fusediff ${env.fusediff} (${env.kernels})`);
  console.log(
    `${env.warmup} warm-up + n timed runs per runtime, alternating; peak ${env.peakGflops.toFixed(0)} GFLOP/s; ` +
      `load average ${env.load[0].toFixed(1)} -> ${env.load[1].toFixed(1)}\n`,
  );
  console.log(markdownTable(forwardTable(results, env)));
  if (results.some((r) => r.torch !== null)) console.log(`\n${markdownTable(torchTable(results))}`);
  if (results.some((r) => r.layers.length)) console.log(`\n${markdownTable(layerTable(results, env))}`);
  const lowpTable = lowp.length ? `\n## INT8 and BF16 (${lowp[0].lowpKernels} kernels)\n\n${lowpMarkdown(lowp, folders)}\n` : '';
  if (lowpTable) console.log(lowpTable);

  const full = cases.length === CASES.length && !env.quick && results.every((r) => r.ours.times.length >= 10);
  const out = process.env.BENCH_OUT ?? path.join('bench', full ? 'results.md' : 'results-partial.md');
  writeFileSync(out, resultsMarkdown(results, env) + lowpTable);
  console.log(`\nwrote ${out}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
