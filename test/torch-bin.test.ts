/**
 * PyTorch .bin checkpoints: hostile files (fixtures written by test/fixtures/torch-bin/make.py)
 * are refused with a stable code and a message naming what was refused, without running
 * anything and without harming the process; convertCheckpoint rewrites .bin weights as
 * safetensors that load to the same forward.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist } from './helpers/dist.js';
import { convertCheckpoint, FusediffError, loadUNet, type FusediffErrorCode } from '../lib/index.js';
import {
  basicWeights,
  identical,
  legacyName,
  makeModel,
  referenceForward,
  TORCH_BIN,
  weightForms,
  WEIGHTS,
  writeHalfRoundedWeights,
  BASIC,
} from './helpers/checkpoints.js';
import { float32, readSafetensors } from './helpers/safetensors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-torch-bin-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const fresh = () => path.join(tmp, `m${counter++}`);

async function failure(promise: Promise<unknown>): Promise<FusediffError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FusediffError);
  return err as FusediffError;
}

/** A model folder whose weights are the hostile fixture `name`. */
function hostileModel(name: string): string {
  const root = fresh();
  makeModel(root, 'model', (unet) => copyFileSync(path.join(TORCH_BIN, 'hostile', `${name}.bin`), path.join(unet, 'diffusion_pytorch_model.bin')));
  return root;
}

let reference: Float32Array;
beforeAll(async () => {
  reference = await referenceForward(BASIC);
});

describe('hostile PyTorch files', () => {
  const cases: { name: string; code: FusediffErrorCode; message: RegExp; marker?: string }[] = [
    { name: 'posix_system', code: 'E_UNSAFE', message: /global "posix\.system" is not allowed/, marker: '/tmp/fusediff-pwned-posix-system' },
    { name: 'builtins_eval', code: 'E_UNSAFE', message: /global "__builtin__\.eval" is not allowed/, marker: '/tmp/fusediff-pwned-builtins-eval' },
    { name: 'custom_class', code: 'E_UNSAFE', message: /global "__main__\.Custom" is not allowed/ },
    { name: 'nested_tuples', code: 'E_FORMAT', message: /"conv_in\.weight" is a tuple, not a tensor/ },
    { name: 'marks', code: 'E_RESOURCE', message: /MARK nesting/ },
    { name: 'truncated', code: 'E_FORMAT', message: /zip archive/ },
    { name: 'compressed', code: 'E_UNSUPPORTED', message: /compressed \(method 8\)/ },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.code}, and nothing runs`, async () => {
      if (c.marker) rmSync(c.marker, { force: true });
      const root = hostileModel(c.name);
      for (const attempt of [() => loadUNet(root), () => convertCheckpoint(root)]) {
        const err = await failure(attempt());
        expect(err.code).toBe(c.code);
        expect(err.message).toMatch(c.message);
        expect(err.message).toContain('diffusion_pytorch_model.bin');
      }
      if (c.code === 'E_UNSAFE') expect((await failure(loadUNet(root))).message).toMatch(/nothing from the file was executed/);
      if (c.marker) expect(existsSync(c.marker)).toBe(false);
      // The failed conversion left no file behind.
      expect(readdirSync(root).filter((f) => f.includes('safetensors'))).toEqual([]);
    });
  }

  it('the process is unharmed: a valid .bin loads after all of them', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms['PyTorch .bin'].write);
    expect(identical(await referenceForward(root), reference)).toBe(true);
  });
});

describe('convertCheckpoint', () => {
  it('writes the same tensors as safetensors, which load to the same forward', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms['PyTorch .bin'].write);
    const r = await convertCheckpoint(root);
    expect(r.output).toBe(path.join(root, WEIGHTS));
    expect(r.sources).toEqual([path.join(root, 'diffusion_pytorch_model.bin')]);
    const original = basicWeights();
    expect(r.tensors).toBe(original.length);
    expect(r.bytes).toBe(original.reduce((n, t) => n + t.data.byteLength, 0));
    const written = readSafetensors(r.output);
    for (const t of original) {
      const w = written.get(t.name)!;
      expect(w.dtype).toBe('F32');
      expect(w.shape).toEqual(t.shape);
      expect(identical(float32(w), t.data)).toBe(true);
    }
    rmSync(path.join(root, 'diffusion_pytorch_model.bin'));
    expect(identical(await referenceForward(root), reference)).toBe(true);
  });

  it('keeps legacy names and makes strided and shared storages contiguous', async () => {
    const root = fresh();
    makeModel(root, 'pipeline', weightForms['PyTorch .bin, legacy names, strided and shared storages'].write);
    const r = await convertCheckpoint(root);
    expect(r.output).toBe(path.join(root, 'unet', WEIGHTS));
    const written = readSafetensors(r.output);
    for (const t of basicWeights()) expect(identical(float32(written.get(legacyName(t.name))!), t.data)).toBe(true);
    expect(identical(await referenceForward(root), reference)).toBe(true);
  });

  it('merges shards into one file, and converts a variant to the same variant', async () => {
    const sharded = fresh();
    makeModel(sharded, 'model', weightForms['sharded PyTorch .bin'].write);
    expect((await convertCheckpoint(sharded)).tensors).toBe(basicWeights().length);
    expect(identical(await referenceForward(sharded), reference)).toBe(true);

    const half = fresh();
    makeModel(half, 'model', weightForms['fp16 PyTorch .bin variant'].write);
    const r = await convertCheckpoint(half, { variant: 'fp16' });
    expect(path.basename(r.output)).toBe('diffusion_pytorch_model.fp16.safetensors');
    expect([...readSafetensors(r.output).values()].every((t) => t.dtype === 'F16')).toBe(true);
    rmSync(path.join(half, 'diffusion_pytorch_model.fp16.bin'));
    const halfReference = await referenceForward(makeModel(fresh(), 'model', writeHalfRoundedWeights));
    expect(identical(await referenceForward(half, { variant: 'fp16' }), halfReference)).toBe(true);
  });

  it('refuses to overwrite unless asked, and needs a .bin', async () => {
    const root = fresh();
    makeModel(root, 'model', (unet) => {
      weightForms.safetensors.write(unet);
      weightForms['PyTorch .bin'].write(unet);
    });
    expect((await failure(convertCheckpoint(root))).code).toBe('E_ARGUMENT');
    expect((await convertCheckpoint(root, { overwrite: true })).tensors).toBe(basicWeights().length);
    const none = fresh();
    makeModel(none, 'model', weightForms.safetensors.write);
    const err = await failure(convertCheckpoint(none));
    expect(err.code).toBe('E_IO');
    expect(err.message).toMatch(/diffusion_pytorch_model\.bin/);
  });

  it('fusediff convert reports, and returns exit codes', async () => {
    ensureDist();
    const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(__dirname, '..', 'dist', 'cli.js'), 'convert', ...args], { encoding: 'utf8' });
    const root = fresh();
    makeModel(root, 'model', weightForms['PyTorch .bin'].write);
    const first = cli(root);
    expect(first.status).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`^wrote .*diffusion_pytorch_model\\.safetensors: ${basicWeights().length} tensors`));
    const again = cli(root);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/exists already/);
    expect(cli(root, '--overwrite').status).toBe(0);
    expect(cli().status).toBe(2);
    expect(cli(root, '--variant').status).toBe(2);
    const help = cli('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/fusediff convert MODEL_DIR/);
  });
});
