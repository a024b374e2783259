/**
 * Benchmark results as text: the console table and bench/results.md (date, machine,
 * versions, settings, method, tables).
 */
import type { CaseResult } from './run-case.js';

export interface Environment {
  date: string;
  cpuModel: string;
  cores: number;
  node: string;
  ort: string;
  fusediff: string;
  commit: string;
  threads: number;
  kernels: string;
  peakGflops: number;
  peakNote: string;
  warmup: number;
  layerRuns: number;
  quick: boolean;
  /** 1-minute load average when the run started and ended (the machine is shared). */
  load: [number, number];
}

const ms = (s: number) => (s * 1000).toFixed(s < 0.01 ? 2 : 1);
const gflops = (flops: number, s: number) => flops / s / 1e9;

function pct(value: number, peak: number): string {
  return `${value.toFixed(0)} (${((100 * value) / peak).toFixed(0)} %)`;
}

export function forwardTable(results: readonly CaseResult[], env: Environment): string[][] {
  const head = [
    'case',
    'GFLOP',
    'fusediff ms',
    'ORT ms',
    'ours/ORT',
    'fusediff GFLOP/s (% peak)',
    'ORT GFLOP/s (% peak)',
    'fusediff convs alone ms',
    'loop lag ms max (median) ours / ORT',
    'RSS MB ours / ORT / peak',
  ];
  const rows = results.map((r) => [
    `${r.id} (${r.hub}, ${r.batch}x${r.channels}x${r.size}x${r.size}), n=${r.ours.times.length}`,
    (r.flops / 1e9).toFixed(1),
    `${ms(r.ours.medianSeconds)} [${ms(r.ours.q1Seconds)}-${ms(r.ours.q3Seconds)}]`,
    `${ms(r.ort.medianSeconds)} [${ms(r.ort.q1Seconds)}-${ms(r.ort.q3Seconds)}]`,
    `${(r.ours.medianSeconds / r.ort.medianSeconds).toFixed(2)} (pairs ${r.pairRatio.q1.toFixed(2)}-${r.pairRatio.q3.toFixed(2)})`,
    pct(gflops(r.flops, r.ours.medianSeconds), env.peakGflops),
    pct(gflops(r.flops, r.ort.medianSeconds), env.peakGflops),
    r.convSumSeconds === null
      ? '-'
      : `${ms(r.convSumSeconds)} (${((100 * r.convSumSeconds) / r.ours.medianSeconds).toFixed(0)} %)`,
    `${r.ours.maxLagMs.toFixed(1)} (${r.ours.medianLagMs.toFixed(1)}) / ${r.ort.maxLagMs.toFixed(0)} (${r.ort.medianLagMs.toFixed(0)})`,
    `${r.ours.rssGrowthMB.toFixed(0)} / ${r.ort.rssGrowthMB.toFixed(0)} / ${r.peakRssMB.toFixed(0)}`,
  ]);
  return [head, ...rows];
}

export function layerTable(results: readonly CaseResult[], env: Environment): string[][] {
  const head = ['case', 'layer', 'MFLOP', 'fusediff ms', 'fusediff GFLOP/s (% peak)', 'ORT ms', 'ORT GFLOP/s (% peak)', 'ours/ORT'];
  const rows: string[][] = [];
  for (const r of results)
    for (const l of r.layers)
      rows.push([
        r.id,
        `${l.layer} x${l.batch}`,
        (l.flops / 1e6).toFixed(0),
        ms(l.oursSeconds),
        pct(gflops(l.flops, l.oursSeconds), env.peakGflops),
        ms(l.ortSeconds),
        pct(gflops(l.flops, l.ortSeconds), env.peakGflops),
        (l.oursSeconds / l.ortSeconds).toFixed(2),
      ]);
  return [head, ...rows];
}

/** fusediff vs PyTorch, for the cases where the PyTorch peer ran (empty table otherwise). */
export function torchTable(results: readonly CaseResult[]): string[][] {
  const head = ['case', 'PyTorch ms', 'fusediff ms', 'ours/PyTorch (median of pairs)', 'max abs diff / max abs fusediff'];
  const rows = results.flatMap((r) =>
    r.torch === null
      ? []
      : [
          [
            r.id,
            `${ms(r.torch.medianSeconds)} [${ms(r.torch.q1Seconds)}-${ms(r.torch.q3Seconds)}]`,
            ms(r.torch.oursMedianSeconds),
            r.torch.pairRatio.toFixed(2),
            r.torch.relativeError.toExponential(1),
          ],
        ],
  );
  return [head, ...rows];
}

function torchSection(results: readonly CaseResult[]): string {
  const ran = results.filter((r) => r.torch !== null);
  if (ran.length === 0) return '';
  return `
## Against PyTorch

${markdownTable(torchTable(results))}

- PyTorch ${ran[0].torch!.version} (Debian's python3-torch, oneDNN), running the training
  recipe's plain-PyTorch UNet2DModel (\`training/unet.py\`) on the same diffusers folder and
  input, in a child process (\`bench/torch_peer.py\`): \`torch.inference_mode()\`, float32
  NCHW, ${ran[0].threads} threads, \`OMP_WAIT_POLICY=PASSIVE\` (idle threads sleep, like the
  other two runtimes). Each forward is timed inside the peer; PyTorch and fusediff forwards
  alternate after the ORT runs, n as in the table above.
`;
}

/** A GitHub-flavoured Markdown table (also readable as plain text on a console). */
export function markdownTable(table: string[][]): string {
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  const line = (row: string[]) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  return [line(table[0]), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...table.slice(1).map(line)].join('\n');
}

export function resultsMarkdown(results: readonly CaseResult[], env: Environment): string {
  const noise = results
    .map((r) => `${r.id}: IQR/median ours ${(100 * r.spread.ours).toFixed(1)} %, ORT ${(100 * r.spread.ort).toFixed(1)} %`)
    .join('; ');
  const share = results.map((r) => `${r.id} ${((100 * r.conv3x3Flops) / r.flops).toFixed(0)} %`).join(', ');
  const agreement = results.map((r) => `${r.id} ${r.relativeError.toExponential(1)}`).join(', ');
  return `# fusediff vs onnxruntime-node — benchmark results

Generated by \`npm run bench\` on ${env.date}${env.quick ? ' (**BENCH_QUICK: too few runs to quote**)' : ''}.

| | |
| --- | --- |
| CPU | ${env.cpuModel}, ${env.cores} cores visible; load average ${env.load[0].toFixed(1)} at start, ${env.load[1].toFixed(1)} at end |
| FP32 peak used for % | ${env.peakGflops.toFixed(0)} GFLOP/s (${env.peakNote}) |
| Node | ${env.node} |
| onnxruntime-node | ${env.ort} (CPU execution provider) |
| fusediff | ${env.fusediff} (commit ${env.commit}), kernels \`${env.kernels}\` |
| threads | ${env.threads} for both: fusediff's pool; ORT intraOpNumThreads ${env.threads}, interOpNumThreads 1, spinning off |
| runs | ${env.warmup} warm-up + n timed forwards per runtime (n in the table), alternating A/B in one process; layers: 2 warm-up + ${env.layerRuns} |

## Whole forward

${markdownTable(forwardTable(results, env))}

- Times are medians with the interquartile range in brackets; \`ours/ORT\` is the ratio of the
  medians (< 1: fusediff is faster), with the IQR of the per-iteration pair ratios.
- FLOPs are counted from the plan: 2 x MACs of every convolution (3x3, 1x1, attention
  QKV/output projections) and linear layer, plus the attention matmuls QK^T and PV.
  Norms, softmax, activations and adds are not counted. Share of 3x3 convolutions: ${share}.
  These are the FLOPs of a direct convolution. fusediff runs most 3x3 layers by Winograd
  F(2x2, 3x3), which does 16/36 of their multiply-adds, so its GFLOP/s are "direct-equivalent"
  and can exceed the peak; ORT and PyTorch convolve directly.
- fusediff convs alone: every convolution of the plan timed alone with fusediff's kernels
  (dev hook, median of a few calls per shape) and summed; in brackets its share of the whole
  fusediff forward. The rest is GroupNorm, attention, resampling, concatenation, layout
  changes and per-op overhead.
- Loop lag: the largest delay of a 1 ms \`setInterval\` while a forward ran, over separate
  watched runs after the timed ones (median over runs in brackets). fusediff computes on
  worker threads, so its lag is only the JS thread waiting for a core; onnxruntime-node's
  \`session.run\` computes on the JS thread. The timed runs are not watched: the timer's
  thousand wake-ups a second cost fusediff ~4 % of a forward on two cores and never fire
  during ORT's blocking run.
- RSS: growth of the process's resident memory from loading each runtime's model and its first
  forward (fusediff first, then ORT), and the peak RSS (VmHWM) of the case's process, both
  runtimes loaded, at the end of the timed forwards.
- Noise: ${noise}.
- Outputs agree: max|ORT - fusediff| / max|fusediff| = ${agreement}.
${torchSection(results)}
## Largest 3x3 convolutions alone

${markdownTable(layerTable(results, env))}

- fusediff: one \`conv2d\` call of the active kernel table on NHWC data (dev hook
  \`native/binding/bench_hook.cpp\`), bias epilogue, timed natively after one untimed call, in
  the algorithm a forward uses for the layer (Winograd F(2x2, 3x3) for these; GFLOP/s counted
  as for a direct convolution).
- ORT: a graph of 8 identical Conv nodes, time / 8 (amortizes the NCHW <-> NCHWc reorders and
  run overhead a whole U-Net pays once).
`;
}
