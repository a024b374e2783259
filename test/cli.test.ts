/**
 * The `fusediff` command end to end, as users run it: `node dist/cli.js ...` on the fixture
 * pipelines (test/fixtures/pipelines).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, encodePng, readPngText } from '../lib/index.js';
import { ensureDist, root } from './helpers/dist.js';

const DDIM = path.join(root, 'test/fixtures/pipelines/ddim');
const CM = path.join(root, 'test/fixtures/pipelines/cm');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-cli-'));

beforeAll(() => ensureDist(), 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function cli(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'dist/cli.js'), ...args], { encoding: 'utf8', cwd: tmp, env: { ...process.env, FUSEDIFF_NUM_THREADS: '2' } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

interface Record {
  file: string;
  seed: number;
  sampler: string;
  steps: number;
  class?: number;
  cell?: { x: number; y: number; width: number; height: number };
  remake: string[];
}

describe('generate', () => {
  it('writes image-<seed>.png files and a manifest; any image is re-made alone, byte for byte', () => {
    const out = path.join(tmp, 'files');
    const r = cli('generate', '--model', DDIM, '--count', '3', '--seed', '11', '--steps', '4', '--out', out);
    expect(r.stderr).toMatch(/step 4\/4/); // plain progress lines: stderr is not a TTY here
    expect(r.status).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as { parameters: { sampler: string }; images: Record[]; stepsRun: number };
    expect(manifest.parameters.sampler).toBe('dpm++2m'); // the fastest good default for an epsilon model
    expect(manifest.stepsRun).toBe(4);
    expect(manifest.images.map((i) => i.file)).toEqual(['image-11.png', 'image-12.png', 'image-13.png']);
    // The PNG carries the same record as the manifest.
    const second = manifest.images[1];
    const bytes = readFileSync(path.join(out, second.file));
    expect(JSON.parse(readPngText(bytes).fusediff)).toEqual(second);
    expect(decodePng(bytes)).toMatchObject({ width: 16, height: 16, channels: 3 });
    // Re-make the middle image alone from its record.
    const again = path.join(tmp, 'again');
    const r2 = cli(...second.remake, '--out', again, '--quiet');
    expect(r2.status).toBe(0);
    expect(r2.stderr).toBe('');
    expect(readFileSync(path.join(again, second.file)).equals(bytes)).toBe(true);
  });

  it('writes one sprite sheet with columns and transparent padding; cells match re-made images', () => {
    const sheet = path.join(tmp, 'sheet', 'sheet.png');
    const r = cli('generate', '--model', CM, '--class', '1,2,3', '--seed', '5', '--channels', '4', '--grid', sheet, '--columns', '2', '--padding', '1', '--json');
    expect(r.status).toBe(0);
    const result = JSON.parse(r.stdout) as { manifest: string; grid: { columns: number; rows: number }; images: Record[] };
    expect(result.manifest).toBe(path.join(tmp, 'sheet', 'manifest.json'));
    expect(result.grid).toMatchObject({ columns: 2, rows: 2, padding: 1, width: 35, height: 35 });
    const img = decodePng(readFileSync(sheet));
    expect(img).toMatchObject({ width: 35, height: 35, channels: 4 });
    expect(Array.from(img.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const rec = result.images[2];
    expect(rec).toMatchObject({ seed: 7, class: 3, sampler: 'consistency', steps: 1, cell: { x: 1, y: 18, width: 16, height: 16 } });
    const out = path.join(tmp, 'cell');
    expect(cli(...rec.remake, '--out', out, '--quiet').status).toBe(0);
    const alone = decodePng(readFileSync(path.join(out, rec.file)));
    for (let y = 0; y < 16; y++) {
      const row = img.data.subarray(((rec.cell!.y + y) * 35 + rec.cell!.x) * 4, ((rec.cell!.y + y) * 35 + rec.cell!.x + 16) * 4);
      expect(Array.from(row)).toEqual(Array.from(alone.data.subarray(y * 64, (y + 1) * 64)));
    }
  });

  it('starts from a PNG with --init and --strength (img2img)', () => {
    const init = path.join(tmp, 'init.png');
    writeFileSync(init, encodePng({ width: 16, height: 16, channels: 3, data: new Uint8ClampedArray(16 * 16 * 3).fill(200) }));
    const r = cli('generate', '--model', DDIM, '--sampler', 'ddim', '--steps', '10', '--init', init, '--strength', '0.3', '--seed', '1', '--out', path.join(tmp, 'img2img'), '--json');
    expect(r.status).toBe(0);
    const m = JSON.parse(r.stdout) as { stepsRun: number; images: Record[] };
    expect(m.stepsRun).toBe(3);
    expect(m.images[0].remake).toEqual(expect.arrayContaining(['--init', init, '--strength', '0.3']));
  });
});

describe('info and bench', () => {
  it('info summarises a pipeline: config, parameters, samplers, memory', () => {
    const r = cli('info', DDIM);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/parameters\s+177,427/);
    expect(r.stdout).toMatch(/samplers\s+ddpm, ddim, .*dpm\+\+2m/);
    expect(r.stdout).toMatch(/activations\s+[\d.]+ MiB per forward at batch 1/);
    const j = JSON.parse(cli('info', CM, '--json').stdout) as { parameters: number; samplers: string[]; memory: { weightBytes: number; activationBytes: number } };
    expect(j.samplers).toEqual(['consistency']);
    // Weights as loaded (packed; some small tensors are folded at load): about the float32 parameters.
    expect(j.memory.weightBytes).toBeGreaterThan(j.parameters * 4 * 0.5);
    expect(j.memory.weightBytes).toBeLessThan(j.parameters * 4 * 2);
    expect(j.memory.activationBytes).toBeGreaterThan(0);
    // A bare UNet folder works too.
    expect(cli('info', path.join(DDIM, 'unet')).stdout).toMatch(/\(unet\)/);
  });

  it('bench reports the median forward time', () => {
    const r = cli('bench', CM, '--runs', '3', '--json');
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout) as { medianMs: number; minMs: number; maxMs: number; shape: number[] };
    expect(j.shape).toEqual([1, 3, 16, 16]);
    expect(j.minMs).toBeLessThanOrEqual(j.medianMs);
    expect(j.medianMs).toBeLessThanOrEqual(j.maxMs);
  });
});

describe('the embedded model', () => {
  it('generate without --model makes tiles by class name, one step, and records ids and guidance', () => {
    const r = cli('generate', '--class', 'wall,floor,item', '--seed', '7', '--grid', 'tiles.png', '--columns', '3', '--quiet', '--json');
    expect(r.status).toBe(0);
    const m = JSON.parse(r.stdout) as { parameters: { model: string; sampler: string; steps: number; guidance?: number; channels: number }; images: Record[]; grid: { width: number; height: number } };
    expect(m.parameters).toMatchObject({ model: 'embedded', sampler: 'consistency', steps: 1, channels: 4 });
    expect(m.parameters.guidance).toBe(1);
    expect(m.images.map((i) => i.class)).toEqual([1, 0, 3]);
    expect([m.grid.width, m.grid.height]).toEqual([96, 32]);
    // --scale enlarges the cells (pixel art previews); the manifest's cells are sheet pixels.
    const big = cli('generate', '--class', 'wall,floor', '--seed', '7', '--grid', 'big.png', '--scale', '2', '--quiet', '--json');
    expect(big.status).toBe(0);
    const bm = JSON.parse(big.stdout) as { images: (Record & { cell: { x: number; width: number } })[]; grid: { width: number; height: number; scale: number } };
    expect(bm.grid).toMatchObject({ width: 128, height: 64, scale: 2 });
    expect(bm.images[1].cell).toMatchObject({ x: 64, width: 64 });
    expect(cli('generate', '--class', 'wall', '--scale', '2').status).not.toBe(0); // --scale needs --grid
    // The second tile's remake names its class by id and its own seed.
    const remake = m.images[1].remake;
    expect(remake).toEqual(expect.arrayContaining(['--class', '0', '--seed', '8']));
  });

  it('info describes the embedded model and its classes', () => {
    const r = cli('info');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/classes\s+0 floor, 1 wall, 2 feature, 3 item, 4 monster \(5: unconditional\)/);
    expect(r.stdout).toMatch(/CLI default consistency, 1 steps/);
  });
});

describe('errors and help', () => {
  const oneLine = (r: { stderr: string }, code: string) => {
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^fusediff: .+ \\[${code}\\]$`));
  };

  it('prints one line with the code and exits 1 for failures, 2 for usage mistakes', () => {
    let r = cli('generate', '--class', 'dragon', '--quiet');
    expect(r.status).toBe(1);
    oneLine(r, 'E_ARGUMENT');
    expect(r.stderr).toMatch(/unknown class "dragon" \(this model's classes: floor, wall, feature, item, monster\)/);
    r = cli('generate', '--model', DDIM, '--device', 'cuda');
    expect(r.status).toBe(1);
    oneLine(r, 'E_BACKEND_UNAVAILABLE');
    r = cli('quantize', DDIM);
    expect(r.status).toBe(2);
    oneLine(r, 'E_ARGUMENT');
    r = cli('quantize', path.join(tmp, 'nowhere'), path.join(tmp, 'q-nowhere'));
    expect(r.status).toBe(1);
    oneLine(r, 'E_IO');
    r = cli('quantize', DDIM, path.join(tmp, 'q-bad'), '--float', 'not_a_layer');
    expect(r.status).toBe(1);
    oneLine(r, 'E_ARGUMENT');
    r = cli('generate', '--model', path.join(tmp, 'nowhere'));
    expect(r.status).toBe(1);
    oneLine(r, 'E_IO');
    r = cli('generate', '--model', DDIM, '--init', path.join(tmp, 'missing.png'));
    expect(r.status).toBe(1);
    oneLine(r, 'E_IO');
    r = cli('generate', '--model', DDIM, '--sampler', 'consistency', '--quiet');
    expect(r.status).toBe(1);
    oneLine(r, 'E_ARGUMENT');
    for (const args of [['generate', '--bogus'], ['generate', '--steps', 'ten'], ['generate', '--sampler', 'nope'], ['frobnicate'], ['info', 'a', 'b']]) {
      r = cli(...args);
      expect(r.status, args.join(' ')).toBe(2);
      oneLine(r, 'E_ARGUMENT');
    }
  });

  it('--help on every command', () => {
    const top = cli('--help');
    expect(top.status).toBe(0);
    for (const c of ['generate', 'info', 'bench']) expect(top.stdout).toContain(c);
    expect(top.stdout).toMatch(/export-onnx/);
    for (const c of ['generate', 'info', 'bench', 'quantize']) {
      const r = cli(c, '--help');
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: fusediff ${c}`));
      expect(r.stdout).toContain('--json');
    }
    expect(cli('generate', '--help').stdout).toMatch(/--grid FILE\.png/);
  });
});

describe('quantize and --int8', () => {
  it('writes an int8 pipeline folder that info describes and generate runs; --int8 quantizes on load', () => {
    const out = path.join(tmp, 'cm-int8');
    const q = cli('quantize', CM, out, '--json');
    expect(q.status, q.stderr).toBe(0);
    const summary = JSON.parse(q.stdout) as { int8Layers: number; floatLayers: string[] };
    expect(summary.floatLayers).toEqual(['time_embedding.linear_1', 'time_embedding.linear_2', 'conv_in', 'conv_out']);
    expect(summary.int8Layers).toBeGreaterThan(10);
    const again = cli('quantize', CM, out);
    expect(again.status).toBe(2); // not empty
    const info = cli('info', out);
    expect(info.status, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/precision\s+fusediff-int8 v1: \d+ int8 ops, 4 float32/);
    const gen = (args: string[], dir: string) => {
      const r = cli('generate', ...args, '--class', '2', '--seed', '3', '--out', dir, '--quiet');
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(path.join(dir, 'image-3.png'));
    };
    const prequantized = gen(['--model', out], path.join(tmp, 'gen-q'));
    const onLoad = gen(['--model', CM, '--int8'], path.join(tmp, 'gen-int8'));
    const float = gen(['--model', CM], path.join(tmp, 'gen-f32'));
    // The same int8 weights either way; float32 differs a little.
    expect(decodePng(prequantized).data).toEqual(decodePng(onLoad).data);
    expect(decodePng(prequantized).data).not.toEqual(decodePng(float).data);
  });
});
