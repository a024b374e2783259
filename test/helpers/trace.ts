/** Helpers for the diffusers trace fixtures (test/fixtures/diffusers/{schedulers,e2e}). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Tensor } from '../../lib/index.js';
import { float32, numbers, readSafetensors, type StTensor } from './safetensors.js';

export const FIXTURES = path.join(__dirname, '../fixtures/diffusers');

export interface TraceCase {
  name: string;
  dir: string;
  json: Record<string, any>;
  configText: string;
  tensors: Map<string, StTensor>;
  tolerance: number;
}

export function loadCase(kind: 'schedulers' | 'e2e', name: string): TraceCase {
  const dir = path.join(FIXTURES, kind, name);
  const json = JSON.parse(readFileSync(path.join(dir, kind === 'e2e' ? 'case.json' : 'case.json'), 'utf8'));
  return {
    name,
    dir,
    json,
    configText: readFileSync(path.join(dir, 'scheduler_config.json'), 'utf8'),
    tensors: readSafetensors(path.join(dir, 'trace.safetensors')),
    tolerance: json.tolerance,
  };
}

/** Row i of a stacked [n, ...] tensor, as a Tensor (float32) and its shape. */
export function row(t: StTensor, i: number): Tensor {
  const shape = t.shape.slice(1);
  const n = shape.reduce((a, b) => a * b, 1);
  const all = float32(t);
  return Tensor.fromFloat32(all.subarray(i * n, (i + 1) * n), shape);
}

/** Row i of a stacked tensor as float64 numbers. */
export function rowNumbers(t: StTensor, i: number): number[] {
  const n = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return numbers(t).slice(i * n, (i + 1) * n);
}

export function whole(t: StTensor): Tensor {
  return Tensor.fromFloat32(float32(t), t.shape);
}

/** Records the largest error of each quantity of a case, for the report. */
export class ErrorLog {
  readonly max = new Map<string, number>();
  add(what: string, err: number): void {
    this.max.set(what, Math.max(this.max.get(what) ?? 0, err));
  }
  summary(): string {
    return [...this.max].map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ');
  }
}
