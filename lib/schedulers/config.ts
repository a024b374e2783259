/**
 * Scheduler configs: diffusers' `scheduler_config.json` objects (or their JSON text, which
 * may contain Python's NaN/Infinity literals) read against a per-class key specification.
 * Absent keys take diffusers' defaults; keys starting with `_` (`_class_name`,
 * `_diffusers_version`) and keys the class does not know are ignored, as diffusers'
 * `from_config` does; a known key with a wrong type or value is an E_CONFIG error naming it.
 */
import { FusediffError } from '../errors.js';
import { parsePythonJson } from '../json.js';

export type KeySpec =
  | { type: 'number'; min?: number; max?: number; positive?: boolean; nullable?: boolean; allowInfinite?: boolean }
  | { type: 'integer'; min?: number; max?: number; nullable?: boolean }
  | { type: 'boolean' }
  | { type: 'enum'; values: readonly string[]; nullable?: boolean; unsupported?: readonly string[] }
  | { type: 'numbers'; nullable?: boolean };

export type ConfigSpec<T> = { [K in keyof T]: KeySpec };

/** A scheduler config as given by a user: an object, JSON text, or nothing (all defaults). */
export type SchedulerConfigInput<T> = Partial<T> | Record<string, unknown> | string | undefined;

function describe(v: unknown): string {
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v) ?? String(v);
}

export function parseSchedulerConfig<T extends object>(
  className: string,
  defaults: Readonly<T>,
  spec: ConfigSpec<T>,
  input: SchedulerConfigInput<T>,
): T {
  let raw: unknown = input ?? {};
  if (typeof raw === 'string') raw = parsePythonJson(raw, `${className} config`);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new FusediffError('E_CONFIG', `${className}: the config must be an object`);
  const out = { ...defaults } as Record<string, unknown>;
  const given = raw as Record<string, unknown>;
  for (const key of Object.keys(spec) as (keyof T & string)[]) {
    if (!(key in given)) continue;
    const value = given[key];
    const s = (spec as Record<string, KeySpec>)[key];
    const bad = (why: string): never => {
      throw new FusediffError('E_CONFIG', `${className}: ${key} = ${describe(value)} ${why}`);
    };
    if (value === null) {
      if ('nullable' in s && s.nullable) {
        out[key] = null;
        continue;
      }
      bad('may not be null');
    }
    switch (s.type) {
      case 'number':
        if (typeof value !== 'number' || Number.isNaN(value)) bad('must be a number');
        if (!s.allowInfinite && !Number.isFinite(value as number)) bad('must be finite');
        if (s.positive && !((value as number) > 0)) bad('must be > 0');
        if (s.min !== undefined && (value as number) < s.min) bad(`must be >= ${s.min}`);
        if (s.max !== undefined && (value as number) > s.max) bad(`must be <= ${s.max}`);
        break;
      case 'integer':
        if (typeof value !== 'number' || !Number.isInteger(value)) bad('must be an integer');
        if (s.min !== undefined && (value as number) < s.min) bad(`must be >= ${s.min}`);
        if (s.max !== undefined && (value as number) > s.max) bad(`must be <= ${s.max}`);
        break;
      case 'boolean':
        // diffusers' rescale_betas_zero_snr is typed int in one class; accept 0/1 too.
        if (value === 0 || value === 1) {
          out[key] = value === 1;
          continue;
        }
        if (typeof value !== 'boolean') bad('must be true or false');
        break;
      case 'enum':
        if (typeof value !== 'string') bad(`must be one of ${s.values.map((v) => `"${v}"`).join(', ')}`);
        if (s.unsupported?.includes(value as string))
          throw new FusediffError('E_UNSUPPORTED', `${className}: ${key} = "${value as string}" is not supported by fusediff`);
        if (!s.values.includes(value as string)) bad(`must be one of ${s.values.map((v) => `"${v}"`).join(', ')}`);
        break;
      case 'numbers':
        if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) bad('must be a list of numbers');
        out[key] = [...(value as number[])];
        continue;
    }
    out[key] = value;
  }
  return out as T;
}

/** Per-image timesteps: one value for the batch or one per image. */
export function timestepList(t: number | readonly number[], batch: number, what = 'timestep'): number[] {
  const list = typeof t === 'number' ? new Array<number>(batch).fill(t) : [...t];
  if (list.length === 1 && batch > 1) return new Array<number>(batch).fill(list[0]);
  if (list.length !== batch) throw new FusediffError('E_SHAPE', `${list.length} ${what}s for a batch of ${batch}`);
  for (const v of list) if (typeof v !== 'number' || !Number.isFinite(v)) throw new FusediffError('E_ARGUMENT', `${what} ${String(v)} is not a finite number`);
  return list;
}

export function checkSteps(n: unknown, max: number, className: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1)
    throw new FusediffError('E_ARGUMENT', `${className}: the number of inference steps must be an integer >= 1, got ${String(n)}`);
  if (n > max)
    throw new FusediffError('E_ARGUMENT', `${className}: ${n} inference steps is more than the ${max} training timesteps`);
  return n;
}
