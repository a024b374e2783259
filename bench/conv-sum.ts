/**
 * Where fusediff's forward time goes: every convolution of the plan timed alone through the
 * dev hook (native/binding/bench_hook.cpp), summed with its multiplicity. Whole forward minus
 * this sum is the time of everything else (GroupNorm, attention, resampling, concatenation,
 * layout changes, time embedding, per-op overhead).
 */
import type { PlanDescription } from '../lib/index.js';
import { native } from '../lib/native.js';
import { median } from './measure.js';

export async function convTimeSum(plan: PlanDescription, batch: number, height: number, width: number, iterations: number): Promise<number> {
  const counts = new Map<string, number>();
  for (const op of plan.ops) {
    if (op.op !== 'conv') continue;
    const i = plan.values[op.in];
    const o = plan.values[op.out];
    const key = JSON.stringify([height >> i.scale, width >> i.scale, i.channels, o.channels, op.kernel, op.stride]);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const addon = native();
  let seconds = 0;
  for (const [key, count] of counts) {
    const [h, w, inChannels, outChannels, kernel, stride] = JSON.parse(key) as number[];
    // The hook pads a 3x3 conv by 1 on every side; a stride-2 conv with diffusers' asymmetric
    // (0, 1, 0, 1) padding has the same output size and FLOPs.
    const r = await addon.benchConv2d({
      batch,
      height: h,
      width: w,
      inChannels,
      outChannels,
      kernel: kernel as 1 | 3,
      stride: stride as 1 | 2,
      iterations,
      warmup: 1,
    });
    seconds += count * median(r.seconds);
  }
  return seconds;
}
