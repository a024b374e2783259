/**
 * The fusediff-int8 folder format under hostile edits: every bad scale, shape, dtype or
 * config entry is a FusediffError with a stable code naming the tensor or key, never a crash
 * or a silently wrong model.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FusediffError, loadUNet, quantizeUNet, type FusediffErrorCode } from '../lib/index.js';

const CM = path.resolve('test/fixtures/pipelines/cm');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-int8-format-'));
const good = path.join(tmp, 'good');
let serial = 0;

beforeAll(async () => {
  const r = await quantizeUNet(CM, { mode: 'int8', outDir: good });
  r.unet.dispose();
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Entry = { dtype: string; shape: number[]; data_offsets: [number, number] };

/** A copy of the quantized folder with its weight file's header and data edited. */
function edited(mutate: (header: Record<string, Entry>, data: Buffer) => Buffer | void, config?: (c: Record<string, unknown>) => void): string {
  const dir = path.join(tmp, `case-${serial++}`);
  cpSync(good, dir, { recursive: true });
  const file = path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors');
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, Entry>;
  let data: Buffer = Buffer.from(buf.subarray(8 + n));
  data = mutate(header, data) ?? data;
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8) json += ' ';
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([head, Buffer.from(json), data]));
  if (config) {
    const cfgFile = path.join(dir, 'unet', 'config.json');
    const c = JSON.parse(readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    config(c);
    writeFileSync(cfgFile, JSON.stringify(c));
  }
  return dir;
}

async function expectCode(p: Promise<unknown>, code: FusediffErrorCode, message: RegExp): Promise<void> {
  const e = await p.then(() => null, (err: unknown) => err);
  expect(e).toBeInstanceOf(FusediffError);
  expect((e as FusediffError).code).toBe(code);
  expect((e as FusediffError).message).toMatch(message);
}

const LAYER = 'down_blocks.0.resnets.0.conv1.weight';
const SCALE = `${LAYER}_scale`;

describe('fusediff-int8 folders', () => {
  it('the written file: I8 weights with F32 [out] scales, float layers F32', async () => {
    const dir = edited((h) => {
      expect(h[LAYER].dtype).toBe('I8');
      expect(h[LAYER].shape).toEqual([16, 16, 3, 3]);
      expect(h[SCALE]).toMatchObject({ dtype: 'F32', shape: [16] });
      expect(h['conv_in.weight'].dtype).toBe('F32');
      expect(h['conv_in.weight_scale']).toBeUndefined();
      expect(h['down_blocks.0.resnets.0.conv1.bias'].dtype).toBe('F32');
    });
    const u = await loadUNet(dir);
    expect(u.info).toMatchObject({ dtype: 'int8', quantization: { format: 'fusediff-int8', version: 1 } });
    u.dispose();
  });

  it('a missing, mistyped or misshapen scale', async () => {
    // Renamed rather than removed: the data section must stay fully covered.
    await expectCode(loadUNet(edited((h) => { h['unrelated.tensor'] = h[SCALE]; delete h[SCALE]; })), 'E_FORMAT', /conv1\.weight.*no '.*conv1\.weight_scale'/);
    await expectCode(loadUNet(edited((h) => { h[SCALE].dtype = 'I32'; })), 'E_FORMAT', /weight_scale.*F32/);
    await expectCode(
      loadUNet(edited((h) => { h[SCALE].shape = [4, 4]; })),
      'E_FORMAT',
      /weight_scale.*\[4, 4\].*\[16\]/,
    );
  });

  it('a NaN, infinite, zero or negative scale', async () => {
    for (const bad of [NaN, Infinity, 0, -0.5]) {
      const dir = edited((h, data) => { data.writeFloatLE(bad, h[SCALE].data_offsets[0] + 4 * 3); });
      await expectCode(loadUNet(dir), 'E_FORMAT', /weight_scale.*output channel 3/);
    }
  });

  it('an int8 weight of -128, an int8 bias, a float weight with a scale', async () => {
    await expectCode(loadUNet(edited((h, data) => { data.writeInt8(-128, h[LAYER].data_offsets[0] + 7); })), 'E_FORMAT', /-128/);
    await expectCode(
      loadUNet(edited((h, data) => {
        // conv_in.weight (F32) gains a scale: a dtype mismatch, not a silently float layer.
        const e = h['conv_in.weight'];
        h['conv_in.weight_scale'] = { dtype: 'F32', shape: [e.shape[0]], data_offsets: [data.length, data.length + 4 * e.shape[0]] };
        return Buffer.concat([data, Buffer.alloc(4 * e.shape[0], 0)]);
      })),
      'E_FORMAT',
      /conv_in\.weight.*scale.*not int8/,
    );
    await expectCode(
      loadUNet(edited((h) => {
        const b = h['down_blocks.0.resnets.0.conv1.bias'];
        const [start, end] = b.data_offsets;
        b.dtype = 'I8';
        b.data_offsets = [start, start + b.shape[0]];
        h['unrelated.padding'] = { dtype: 'U8', shape: [end - start - b.shape[0]], data_offsets: [start + b.shape[0], end] };
      })),
      'E_FORMAT',
      /conv1\.bias/,
    );
  });

  it('the config entry: unknown format or version, malformed float_layers', async () => {
    const q = (f: (q: Record<string, unknown>) => void) => (c: Record<string, unknown>) => f(c.quantization as Record<string, unknown>);
    await expectCode(loadUNet(edited(() => {}, q((x) => { x.format = 'gptq'; }))), 'E_UNSUPPORTED', /gptq/);
    await expectCode(loadUNet(edited(() => {}, q((x) => { x.version = 2; }))), 'E_UNSUPPORTED', /version 2/);
    await expectCode(loadUNet(edited(() => {}, q((x) => { x.float_layers = 'conv_in'; }))), 'E_CONFIG', /float_layers/);
    await expectCode(loadUNet(edited(() => {}, (c) => { c.quantization = 7; })), 'E_CONFIG', /quantization/);
  });

  it('options: bfloat16 of an int8 folder, unknown dtype, unknown layer names, unknown mode', async () => {
    await expectCode(loadUNet(good, { dtype: 'bfloat16' }), 'E_UNSUPPORTED', /int8 weights/);
    await expectCode(loadUNet(CM, { dtype: 'int4' as 'int8' }), 'E_UNSUPPORTED', /int4/);
    await expectCode(loadUNet(CM, { dtype: 'int8', floatLayers: ['conv_in', 'nope'] }), 'E_ARGUMENT', /"nope"/);
    await expectCode(quantizeUNet(CM, { mode: 'int4' as 'int8' }), 'E_UNSUPPORTED', /int4/);
    await expectCode(quantizeUNet(good, { mode: 'int8' }), 'E_ARGUMENT', /already quantized/);
  });

  it('floatLayers keeps groups whole and dequantizes layers of an int8 folder', async () => {
    const u = await loadUNet(CM, { dtype: 'int8', floatLayers: ['mid_block.attentions.0.to_k'] });
    const qkv = u.describePlan().ops.find((o) => o.op === 'conv' && o.sources.includes('mid_block.attentions.0.to_k'));
    expect(qkv && qkv.op === 'conv' && qkv.precision).toBe('float32');
    expect(u.describePlan().ops.find((o) => o.op === 'conv' && o.sources[0] === 'conv_in')).toMatchObject({ precision: 'int8' });
    u.dispose();
    const d = await loadUNet(good, { floatLayers: ['down_blocks.0.resnets.0.conv1'] });
    expect(d.describePlan().ops.find((o) => o.op === 'conv' && o.sources[0] === 'down_blocks.0.resnets.0.conv1')).toMatchObject({ precision: 'float32' });
    d.dispose();
  });
});
