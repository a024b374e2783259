/**
 * ONNX export checked by the peer runtime: every fixture model (every input set, including
 * non-square ones) and the google/ddpm-cifar10-32 config with random weights are exported,
 * run by onnxruntime-node, and compared with fusediff's own forward on the same inputs.
 *
 * Metric: relative error = max|ort - ours| / max|ours| over the whole output, required
 * <= 1e-4. ORT is also held to the diffusers golden tensors' own tolerance.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FusediffError, loadUNet, Tensor, type UNet } from '../lib/index.js';
import { ensureDist } from './helpers/dist.js';
import { maxAbsDiff } from './helpers/compare.js';
import { DDPM_CIFAR10_32 } from './helpers/configs.js';
import { makeModel, weightForms } from './helpers/checkpoints.js';
import { rng, writeRandomModel } from './helpers/random-model.js';
import { float32, numbers, readSafetensors } from './helpers/safetensors.js';

const MODELS = path.join(__dirname, 'fixtures/diffusers/models');
const RELATIVE_TOLERANCE = 1e-4;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-onnx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

/** max|a - b| / max|b| */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return maxAbsDiff(a, b) / maxAbs(b);
}

async function session(file: string): Promise<ort.InferenceSession> {
  // Two threads, no spinning: the test machine has two cores shared with other work.
  return ort.InferenceSession.create(file, {
    intraOpNumThreads: 2,
    interOpNumThreads: 1,
    extra: { 'session.intra_op.allow_spinning': '0', 'session.inter_op.allow_spinning': '0' },
  });
}

interface Case {
  sample: Float32Array;
  shape: number[];
  timesteps: number[];
  labels?: number[];
}

async function runBoth(unet: UNet, s: ort.InferenceSession, c: Case): Promise<{ ours: Float32Array; theirs: Float32Array }> {
  const batch = c.shape[0];
  const feeds: Record<string, ort.Tensor> = {
    sample: new ort.Tensor('float32', c.sample, c.shape),
    timestep: new ort.Tensor('float32', Float32Array.from(c.timesteps), [batch]),
  };
  if (c.labels) feeds.class_labels = new ort.Tensor('int64', BigInt64Array.from(c.labels, (v) => BigInt(v)), [batch]);
  const theirs = (await s.run(feeds)).out_sample;
  const x = Tensor.fromFloat32(c.sample, c.shape);
  const y = await unet.forward(x, c.timesteps, c.labels ? { classLabels: c.labels } : {});
  expect(theirs.dims).toEqual(y.shape);
  const ours = await y.toFloat32Array();
  x.dispose();
  y.dispose();
  return { ours, theirs: theirs.data as Float32Array };
}

interface InputSet {
  prefix: string;
  batch: number;
  tolerance: number;
}

describe.each(readdirSync(MODELS).sort())('fixture %s exported to ONNX', (name) => {
  const dir = path.join(MODELS, name);
  const cases = JSON.parse(readFileSync(path.join(dir, 'cases.json'), 'utf8')) as { input_sets: InputSet[] };
  const io = readSafetensors(path.join(dir, 'io.safetensors'));
  let unet: UNet;
  let s: ort.InferenceSession;
  beforeAll(async () => {
    unet = await loadUNet(dir);
    const file = path.join(tmp, `${name}.onnx`);
    const result = await unet.exportOnnx(file);
    expect(result.opset).toBe(17);
    expect(result.inputs.slice(0, 2)).toEqual(['sample', 'timestep']);
    s = await session(file);
  });
  afterAll(async () => {
    await s?.release();
    unet?.dispose();
  });

  it.each(cases.input_sets)('$prefix: onnxruntime matches fusediff within 1e-4 relative', async (set) => {
    const sample = io.get(`${set.prefix}sample`)!;
    let timesteps = numbers(io.get(`${set.prefix}timestep`)!);
    if (timesteps.length === 1) timesteps = new Array<number>(set.batch).fill(timesteps[0]);
    const labelTensor = io.get(`${set.prefix}class_labels`);
    const { ours, theirs } = await runBoth(unet, s, {
      sample: float32(sample),
      shape: sample.shape,
      timesteps,
      labels: labelTensor ? numbers(labelTensor) : undefined,
    });
    const rel = relativeError(theirs, ours);
    console.log(`${name} ${set.prefix} [${sample.shape.join('x')}]: max|ort - ours| / max|ours| = ${rel.toExponential(2)}`);
    expect(rel).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    // The exported graph is faithful to diffusers too, not only to fusediff.
    expect(maxAbsDiff(theirs, numbers(io.get(`${set.prefix}out_f64`)!))).toBeLessThanOrEqual(set.tolerance);
  });
});

describe.each(['PyTorch .bin, legacy names, strided and shared storages', 'safetensors, legacy attention names', 'sharded PyTorch .bin'])(
  'unet_basic stored as %s exported to ONNX',
  (form) => {
    it('onnxruntime matches the diffusers golden output (weights read as loading reads them)', async () => {
      const unetDir = makeModel(path.join(tmp, form.replace(/\W+/g, '-')), 'model', weightForms[form].write);
      const unet = await loadUNet(unetDir);
      const file = path.join(tmp, `${path.basename(unetDir)}.onnx`);
      try {
        await unet.exportOnnx(file);
      } finally {
        unet.dispose();
      }
      const s = await session(file);
      try {
        const io = readSafetensors(path.join(MODELS, 'unet_basic', 'io.safetensors'));
        const set = (JSON.parse(readFileSync(path.join(MODELS, 'unet_basic', 'cases.json'), 'utf8')) as { input_sets: InputSet[] }).input_sets[0];
        const sample = io.get(`${set.prefix}sample`)!;
        let timesteps = numbers(io.get(`${set.prefix}timestep`)!);
        if (timesteps.length === 1) timesteps = new Array<number>(set.batch).fill(timesteps[0]);
        const out = await s.run({
          sample: new ort.Tensor('float32', float32(sample), sample.shape),
          timestep: new ort.Tensor('float32', Float32Array.from(timesteps), [set.batch]),
        });
        expect(maxAbsDiff(out.out_sample.data as Float32Array, numbers(io.get(`${set.prefix}out_f64`)!))).toBeLessThanOrEqual(set.tolerance);
      } finally {
        await s.release();
      }
    });
  },
);

describe('google/ddpm-cifar10-32 config, random weights, exported to ONNX', () => {
  it('onnxruntime matches fusediff at batch 2, 32 x 32, within 1e-4 relative', async () => {
    const dir = path.join(tmp, 'cifar10-32');
    writeRandomModel(dir, DDPM_CIFAR10_32, 4321);
    const unet = await loadUNet(dir);
    const file = path.join(tmp, 'cifar10-32.onnx');
    const result = await unet.exportOnnx(file);
    expect(result.bytes).toBeGreaterThan(35_746_307 * 4);
    const s = await session(file);
    const random = rng(99);
    const shape = [2, 3, 32, 32];
    const sample = Float32Array.from({ length: 2 * 3 * 32 * 32 }, () => 2 * random() - 1);
    const { ours, theirs } = await runBoth(unet, s, { sample, shape, timesteps: [999, 17] });
    const rel = relativeError(theirs, ours);
    console.log(`cifar10-32 [2x3x32x32]: max|ort - ours| / max|ours| = ${rel.toExponential(2)}`);
    expect(rel).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    await s.release();
    unet.dispose();
    rmSync(file);
  }, 120_000);
});

describe('export options and errors', () => {
  const dir = path.join(MODELS, 'unet_learned_var_cond');
  let unet: UNet;
  beforeAll(async () => {
    unet = await loadUNet(dir);
  });
  afterAll(() => unet?.dispose());

  it.each([15, 21])('opset %i exports a model onnxruntime runs identically', async (opset) => {
    const file = path.join(tmp, `opset${opset}.onnx`);
    expect((await unet.exportOnnx(file, { opset })).opset).toBe(opset);
    const s = await session(file);
    const random = rng(opset);
    const shape = [2, 3, 8, 16];
    const sample = Float32Array.from({ length: 2 * 3 * 8 * 16 }, () => 2 * random() - 1);
    const { ours, theirs } = await runBoth(unet, s, { sample, shape, timesteps: [3, 700], labels: [1, 2] });
    expect(relativeError(theirs, ours)).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    await s.release();
  });

  it('refuses opsets outside 15-21 (E_UNSUPPORTED) and non-integers (E_ARGUMENT)', async () => {
    await expect(unet.exportOnnx(path.join(tmp, 'x.onnx'), { opset: 14 })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await expect(unet.exportOnnx(path.join(tmp, 'x.onnx'), { opset: 22 })).rejects.toMatchObject({ code: 'E_UNSUPPORTED' });
    await expect(unet.exportOnnx(path.join(tmp, 'x.onnx'), { opset: 17.5 })).rejects.toMatchObject({ code: 'E_ARGUMENT' });
    expect(existsSync(path.join(tmp, 'x.onnx'))).toBe(false);
  });

  it('reports a write failure as E_IO and leaves no partial file', async () => {
    const err = await unet.exportOnnx(path.join(tmp, 'no-such-folder', 'm.onnx')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FusediffError);
    expect((err as FusediffError).code).toBe('E_IO');
    expect(readdirSync(tmp).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a disposed model with E_DISPOSED', async () => {
    const other = await loadUNet(dir);
    other.dispose();
    await expect(other.exportOnnx(path.join(tmp, 'd.onnx'))).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });

  it('fusediff export-onnx: usage errors exit 2, failures 1, a good export 0', async () => {
    ensureDist();
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli.js'), 'export-onnx', ...args], { encoding: 'utf8' });
    expect(cli(dir).status).toBe(2);
    expect(cli(dir, 'a.onnx', '--opset', 'x').status).toBe(2);
    expect(cli(dir, 'a.onnx', '--fast').status).toBe(2);
    const missing = cli(path.join(tmp, 'missing'), path.join(tmp, 'm.onnx'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/\[E_IO\]/);
    const out = path.join(tmp, 'cli.onnx');
    const ok = cli(dir, out, '--opset=18');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^wrote .*cli\.onnx .*opset 18/);
    expect(existsSync(out)).toBe(true);
  });
});

describe('configs the fixtures do not cover', () => {
  const base = JSON.parse(readFileSync(path.join(MODELS, 'unet_basic', 'config.json'), 'utf8')) as Record<string, unknown>;

  it('an odd sinusoidal projection width (its zero column is a Pad)', async () => {
    const dir = path.join(tmp, 'odd-width');
    writeRandomModel(dir, { ...base, block_out_channels: [15, 30], norm_num_groups: 5, attention_head_dim: 5 }, 3);
    const unet = await loadUNet(dir);
    expect(unet.describePlan().time.projDim % 2).toBe(1);
    const file = path.join(tmp, 'odd-width.onnx');
    await unet.exportOnnx(file);
    const s = await session(file);
    const random = rng(6);
    const sample = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => 2 * random() - 1);
    const { ours, theirs } = await runBoth(unet, s, { sample, shape: [2, 3, 16, 16], timesteps: [3, 900] });
    expect(relativeError(theirs, ours)).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    await s.release();
    unet.dispose();
  });

  it.each(['timestep', 'identity'] as const)('class_embed_type "%s": onnxruntime matches fusediff', async (type) => {
    const dir = path.join(tmp, `class-${type}`);
    writeRandomModel(dir, { ...base, class_embed_type: type }, 77);
    const unet = await loadUNet(dir);
    const file = path.join(tmp, `class-${type}.onnx`);
    await unet.exportOnnx(file);
    const s = await session(file);
    const random = rng(5);
    const shape = [2, 3, 16, 16];
    const sample = Float32Array.from({ length: 2 * 3 * 16 * 16 }, () => 2 * random() - 1);
    const dim = unet.info.timeEmbeddingDim;
    const labels = type === 'timestep' ? Float32Array.of(12.5, 600) : Float32Array.from({ length: 2 * dim }, () => random() - 0.5);
    const feeds = {
      sample: new ort.Tensor('float32', sample, shape),
      timestep: new ort.Tensor('float32', Float32Array.of(400, 9), [2]),
      class_labels: new ort.Tensor('float32', labels, type === 'timestep' ? [2] : [2, dim]),
    };
    const theirs = (await s.run(feeds)).out_sample.data as Float32Array;
    const y = await unet.forward(Tensor.fromFloat32(sample, shape), [400, 9], { classLabels: labels });
    expect(relativeError(theirs, await y.toFloat32Array())).toBeLessThanOrEqual(RELATIVE_TOLERANCE);
    await s.release();
    unet.dispose();
  });
});
