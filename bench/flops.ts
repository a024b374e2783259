/**
 * FLOPs of one forward, counted from the plan (UNet.describePlan()):
 *   2 x MACs of every convolution (3x3, 1x1, the fused QKV and output projections of
 *   attention) and of every linear layer (time MLP, class MLP, the ResNets' time projections),
 *   plus the two attention matmuls, Q K^T and P V: 2 x 2 x tokens^2 x channels per image.
 * GroupNorm, softmax, SiLU, adds, resampling and concatenation are not counted (they are a
 * fraction of a percent of the total and are memory-bound anyway).
 */
import type { PlanDescription, PlanLinear } from '../lib/index.js';

export interface ConvShape {
  inChannels: number;
  outChannels: number;
  /** Input height and width. */
  height: number;
  width: number;
  kernel: number;
  stride: number;
}

export interface FlopCount {
  total: number;
  conv3x3: number;
  /** The plan's 3x3 convolutions grouped by shape, largest total share first. */
  conv3x3Shapes: { shape: ConvShape; count: number; flopsEach: number }[];
}

export function countFlops(plan: PlanDescription, batch: number, height: number, width: number): FlopCount {
  const linear = (l: PlanLinear) => 2 * batch * l.in * l.out;
  let total = linear(plan.time.linear1) + linear(plan.time.linear2) + linear(plan.tembProj);
  if (plan.classEmbedding.type === 'timestep') total += linear(plan.classEmbedding.linear1) + linear(plan.classEmbedding.linear2);
  let conv3x3 = 0;
  const shapes = new Map<string, { shape: ConvShape; count: number; flopsEach: number }>();
  const dims = (v: number) => ({ h: height >> plan.values[v].scale, w: width >> plan.values[v].scale, c: plan.values[v].channels });
  for (const op of plan.ops) {
    if (op.op === 'conv') {
      const i = dims(op.in);
      const o = dims(op.out);
      const flops = 2 * batch * o.h * o.w * o.c * i.c * op.kernel * op.kernel;
      total += flops;
      if (op.kernel === 3) {
        conv3x3 += flops;
        const shape: ConvShape = { inChannels: i.c, outChannels: o.c, height: i.h, width: i.w, kernel: 3, stride: op.stride };
        const key = JSON.stringify(shape);
        const entry = shapes.get(key) ?? { shape, count: 0, flopsEach: flops };
        entry.count++;
        shapes.set(key, entry);
      }
    } else if (op.op === 'attention') {
      const o = dims(op.out);
      const tokens = o.h * o.w;
      total += 2 * 2 * batch * tokens * tokens * o.c; // Q K^T and P V over all heads
    }
  }
  const conv3x3Shapes = [...shapes.values()].sort((a, b) => b.count * b.flopsEach - a.count * a.flopsEach);
  return { total, conv3x3, conv3x3Shapes };
}

export function describeShape(s: ConvShape): string {
  return `3x3 ${s.inChannels}->${s.outChannels} @${s.height}x${s.width}${s.stride === 2 ? ' s2' : ''}`;
}
