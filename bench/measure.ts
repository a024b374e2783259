/**
 * Timing discipline for a shared, noisy 2-core machine: the two runtimes run alternately
 * (A B, then B A, ...) so drifts in background load hit both equally, and results are medians.
 * Event-loop lag is measured in separate, watched runs (see alternate).
 */
import { setTimeout as sleep } from 'node:timers/promises';

export function quantile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export const median = (values: readonly number[]) => quantile(values, 0.5);

/**
 * Max delay of a 1 ms setInterval while a call runs: how long the event loop could not
 * serve anything else. A call that computes on the JS thread shows its whole duration here.
 */
export class LoopLagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private maxGap = 0;

  start(): void {
    this.last = performance.now();
    this.timer = setInterval(() => {
      const now = performance.now();
      this.maxGap = Math.max(this.maxGap, now - this.last);
      this.last = now;
    }, 1);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Runs fn and returns the largest interval delay seen during it, in ms (0 = on time). */
  async watch(fn: () => Promise<void>): Promise<number> {
    this.last = performance.now();
    this.maxGap = 0;
    await fn();
    // Let the interval fire once more: if fn blocked the loop, this tick measures the gap.
    await sleep(3);
    return Math.max(0, this.maxGap - 1);
  }
}

export interface Series {
  /** Seconds per kept run. */
  times: number[];
  /** Each kept run's max event-loop delay, ms (empty when no monitor watched). */
  lagsMs: number[];
}

export interface Alternated {
  a: Series;
  b: Series;
  /** a[i] / b[i] for each iteration (the pair ran back to back). */
  pairRatios: number[];
}

/**
 * warmup + runs iterations of (a, b) in alternating order; only the last `runs` are kept.
 * A function that resolves to a number reports its own seconds (a peer process that times
 * itself); otherwise the call is timed here.
 * With a monitor, each call is watched for event-loop lag. Timed runs should not be watched:
 * the monitor's 1 ms timer wakes the JS thread a thousand times a second, which costs a runtime
 * computing on worker threads (fusediff) about 4 % of its forward on two cores, while one that
 * blocks the JS thread (onnxruntime-node) never lets it fire: watched timings are not comparable.
 */
export async function alternate(
  a: () => Promise<void | number>,
  b: () => Promise<void | number>,
  options: { warmup: number; runs: number; monitor?: LoopLagMonitor; onIteration?: (i: number) => void },
): Promise<Alternated> {
  const result: Alternated = { a: { times: [], lagsMs: [] }, b: { times: [], lagsMs: [] }, pairRatios: [] };
  const timed = async (fn: () => Promise<void | number>, series: Series, keep: boolean) => {
    let seconds = 0;
    const run = async () => {
      const t0 = performance.now();
      const own = await fn();
      seconds = typeof own === 'number' ? own : (performance.now() - t0) / 1000;
    };
    if (options.monitor) {
      const lag = await options.monitor.watch(run);
      if (keep) series.lagsMs.push(lag);
    } else {
      await run();
    }
    if (keep) series.times.push(seconds);
    return seconds;
  };
  for (let i = 0; i < options.warmup + options.runs; i++) {
    const keep = i >= options.warmup;
    let ta: number, tb: number;
    if (i % 2 === 0) {
      ta = await timed(a, result.a, keep);
      tb = await timed(b, result.b, keep);
    } else {
      tb = await timed(b, result.b, keep);
      ta = await timed(a, result.a, keep);
    }
    if (keep) result.pairRatios.push(ta / tb);
    options.onIteration?.(i);
  }
  return result;
}
