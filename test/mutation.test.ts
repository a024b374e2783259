/**
 * Seeded mutations of valid model files — truncations, bit flips, huge header lengths, huge,
 * negative and overlapping offsets, absurd shapes, NaN/Inf and deep nesting in configs. Every
 * case must end in a successful load or a FusediffError: never a crash, a hang or another
 * error type. (The native parsers are also fuzzed with libFuzzer: npm run fuzz.)
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FusediffError, loadUNet, Tensor } from '../lib/index.js';
import { rng } from './helpers/random-model.js';

const BASIC = path.join(__dirname, 'fixtures/diffusers/models/unet_basic');
const weights = readFileSync(path.join(BASIC, 'diffusion_pytorch_model.safetensors'));
const configText = readFileSync(path.join(BASIC, 'config.json'), 'utf8');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-mutation-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

let n = 0;
async function outcome(weightBytes: Buffer, config: string): Promise<'loaded' | string> {
  const dir = path.join(tmp, `case${n++}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), config);
  writeFileSync(path.join(dir, 'diffusion_pytorch_model.safetensors'), weightBytes);
  try {
    const unet = await loadUNet(dir);
    const x = Tensor.fromFloat32(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]);
    (await unet.forward(x, 10)).dispose();
    unet.dispose();
    return 'loaded';
  } catch (e) {
    if (!(e instanceof FusediffError)) throw e; // anything else fails the test
    return e.code;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const headerLength = Number(weights.readBigUInt64LE(0));
const header = JSON.parse(weights.subarray(8, 8 + headerLength).toString()) as Record<string, { data_offsets?: number[]; shape?: number[] }>;
const tensorNames = Object.keys(header).filter((k) => k !== '__metadata__');

function withHeader(mutate: (h: typeof header) => void): Buffer {
  const h = structuredClone(header);
  mutate(h);
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, weights.subarray(8 + headerLength)]);
}

describe('mutated safetensors files', () => {
  const random = rng(2024);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
  const absurd = [-1, 2 ** 53, 2 ** 64, 1e300, 2 ** 31, 0, 3.5];

  const mutations: [string, () => Buffer][] = [];
  for (let i = 0; i < 40; i++) mutations.push([`truncate ${i}`, () => weights.subarray(0, Math.floor(random() * weights.length))]);
  for (let i = 0; i < 60; i++)
    mutations.push([
      `bit flips ${i}`,
      () => {
        const b = Buffer.from(weights);
        const flips = 1 + Math.floor(random() * 8);
        // Half of the cases aim at the header, where flips matter most.
        for (let f = 0; f < flips; f++) {
          const at = i % 2 ? Math.floor(random() * (8 + headerLength)) : Math.floor(random() * b.length);
          b[at] ^= 1 << Math.floor(random() * 8);
        }
        return b;
      },
    ]);
  for (const len of [2n ** 63n, 2n ** 64n - 1n, BigInt(weights.length), 100n * 1024n * 1024n + 1n, 0n])
    mutations.push([`header length ${len}`, () => { const b = Buffer.from(weights); b.writeBigUInt64LE(len); return b; }]);
  for (let i = 0; i < 30; i++)
    mutations.push([`offsets ${i}`, () => withHeader((h) => { const t = h[pick(tensorNames)]; t.data_offsets = [pick(absurd), pick(absurd)]; })]);
  for (let i = 0; i < 10; i++)
    mutations.push([`overlap ${i}`, () => withHeader((h) => { h[pick(tensorNames)].data_offsets = [...h[pick(tensorNames)].data_offsets!]; })]);
  for (let i = 0; i < 30; i++)
    mutations.push([`shape ${i}`, () => withHeader((h) => { const t = h[pick(tensorNames)]; t.shape = Array.from({ length: 1 + Math.floor(random() * 10) }, () => pick(absurd)); })]);

  it(`${mutations.length} mutations all end in a load or a FusediffError`, async () => {
    const codes = new Map<string, number>();
    for (const [, make] of mutations) {
      const code = await outcome(make(), configText);
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    // Structural damage must be caught: most cases are errors, and the formats named.
    expect(codes.get('E_FORMAT') ?? 0).toBeGreaterThan(mutations.length / 3);
    for (const code of codes.keys()) expect(['loaded', 'E_FORMAT', 'E_RESOURCE', 'E_SHAPE', 'E_UNSUPPORTED']).toContain(code);
  });
});

describe('mutated configs', () => {
  const base = JSON.parse(configText) as Record<string, unknown>;
  const values: unknown[] = ['NaN', 'Infinity', '-Infinity', -1, 0, 1e308, 2 ** 53, 'x', null, [], {}, [1e9], true, 0.5];
  const keys = Object.keys(base);

  it('every key set to hostile values ends in a load or a FusediffError', async () => {
    const random = rng(77);
    const seen = new Set<string>();
    for (let i = 0; i < 120; i++) {
      const key = keys[Math.floor(random() * keys.length)];
      const value = values[Math.floor(random() * values.length)];
      // Python-style literals go in unquoted, as Python's json writes them.
      const text = typeof value === 'string' && ['NaN', 'Infinity', '-Infinity'].includes(value)
        ? JSON.stringify({ ...base, [key]: '__X__' }).replace('"__X__"', value)
        : JSON.stringify({ ...base, [key]: value });
      seen.add(await outcome(weights, text));
    }
    for (const code of seen) expect(['loaded', 'E_CONFIG', 'E_UNSUPPORTED', 'E_FORMAT', 'E_SHAPE', 'E_RESOURCE']).toContain(code);
    expect(seen.has('E_CONFIG')).toBe(true);
  });

  it('deeply nested and huge JSON is refused cleanly', async () => {
    expect(await outcome(weights, '['.repeat(100_000) + ']'.repeat(100_000))).toBe('E_FORMAT');
    expect(await outcome(weights, JSON.stringify({ ...base, extra: '['.repeat(10) }) + '}')).toBe('E_FORMAT');
    expect(await outcome(weights, ' '.repeat(2 << 20))).toBe('E_RESOURCE');
  });
});
