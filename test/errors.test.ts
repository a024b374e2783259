/**
 * Bad input gives a FusediffError with the right code and a message that names the problem;
 * the process survives every case (each is followed by a successful load and forward).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FusediffError, loadUNet, Tensor, type FusediffErrorCode } from '../lib/index.js';
import { readSafetensors, writeSafetensors } from './helpers/safetensors.js';

const BASIC = path.join(__dirname, 'fixtures/diffusers/models/unet_basic');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-errors-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const goodConfig = JSON.parse(readFileSync(path.join(BASIC, 'config.json'), 'utf8')) as Record<string, unknown>;
const goodWeights = readFileSync(path.join(BASIC, 'diffusion_pytorch_model.safetensors'));

type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;

function splitWeights(): { header: Header; data: Buffer } {
  const n = Number(goodWeights.readBigUInt64LE(0));
  return { header: JSON.parse(goodWeights.subarray(8, 8 + n).toString()) as Header, data: goodWeights.subarray(8 + n) };
}

function encode(header: unknown, data: Buffer, headerLength?: bigint): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

let counter = 0;
function modelDir(weights: Buffer | null, config: unknown = goodConfig): string {
  const dir = path.join(tmp, `m${counter++}`);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  if (weights) writeFileSync(path.join(dir, 'diffusion_pytorch_model.safetensors'), weights);
  return dir;
}

async function expectCode(promise: Promise<unknown>, code: FusediffErrorCode, pattern?: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FusediffError);
  expect((err as FusediffError).code).toBe(code);
  if (pattern) expect((err as FusediffError).message).toMatch(pattern);
}

function withTensor(mutate: (t: { dtype: string; shape: number[]; data_offsets: [number, number] }, header: Header) => void, name = 'conv_in.weight'): Buffer {
  const { header, data } = splitWeights();
  mutate(header[name] as { dtype: string; shape: number[]; data_offsets: [number, number] }, header);
  return encode(header, data);
}

describe('safetensors files', () => {
  it('truncated file', async () => {
    await expectCode(loadUNet(modelDir(goodWeights.subarray(0, goodWeights.length - 100))), 'E_FORMAT');
    await expectCode(loadUNet(modelDir(goodWeights.subarray(0, 5))), 'E_FORMAT');
    await expectCode(loadUNet(modelDir(Buffer.alloc(0))), 'E_FORMAT');
  });
  it('header length larger than the file', async () => {
    const { header, data } = splitWeights();
    await expectCode(loadUNet(modelDir(encode(header, data, BigInt(goodWeights.length)))), 'E_FORMAT');
    await expectCode(loadUNet(modelDir(encode(header, data, 1n << 62n))), 'E_FORMAT');
  });
  it('header that is not JSON', async () => {
    const bytes = Buffer.from(goodWeights);
    bytes.write('#', 8);
    await expectCode(loadUNet(modelDir(bytes)), 'E_FORMAT');
  });
  it('offsets out of range', async () => {
    const bytes = withTensor((t) => { t.data_offsets = [t.data_offsets[0], t.data_offsets[1] + 1_000_000]; });
    await expectCode(loadUNet(modelDir(bytes)), 'E_FORMAT', /conv_in\.weight/);
  });
  it('overlapping offsets', async () => {
    // Two tensors of one size; the later one is pointed at the earlier one's bytes.
    const { header, data } = splitWeights();
    const entries = Object.entries(header).filter(([k]) => k !== '__metadata__') as [string, { data_offsets: [number, number] }][];
    entries.sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0]);
    const size = (e: { data_offsets: [number, number] }) => e.data_offsets[1] - e.data_offsets[0];
    const [first, second] = entries.filter(([, e]) => size(e) === size(entries[0][1]));
    second[1].data_offsets = [...first[1].data_offsets];
    await expectCode(loadUNet(modelDir(encode(header, data))), 'E_FORMAT', /overlap/);
  });
  it('size that does not match dtype x shape', async () => {
    const bytes = withTensor((t) => { t.shape = [t.shape[0] * 2, ...t.shape.slice(1)]; });
    await expectCode(loadUNet(modelDir(bytes)), 'E_FORMAT', /conv_in\.weight/);
  });
  it('unknown dtype, and a dtype a weight cannot have', async () => {
    await expectCode(loadUNet(modelDir(withTensor((t) => { t.dtype = 'Q4_K'; }))), 'E_UNSUPPORTED', /Q4_K/);
    const i32 = withTensor((t) => { t.dtype = 'I32'; });
    await expectCode(loadUNet(modelDir(i32)), 'E_UNSUPPORTED', /conv_in\.weight/);
  });
  it('a missing weight is named', async () => {
    const tensors = [...readSafetensors(path.join(BASIC, 'diffusion_pytorch_model.safetensors'))]
      .filter(([name]) => name !== 'mid_block.attentions.0.to_k.bias')
      .map(([name, t]) => ({ name, shape: t.shape, data: t.data as Float32Array }));
    const dir = modelDir(null);
    writeSafetensors(path.join(dir, 'diffusion_pytorch_model.safetensors'), tensors);
    await expectCode(loadUNet(dir), 'E_FORMAT', /mid_block\.attentions\.0\.to_k\.bias/);
  });
  it('a weight with the wrong shape is named', async () => {
    const bytes = withTensor((t) => { t.shape = [t.shape[1], t.shape[0], ...t.shape.slice(2)]; });
    await expectCode(loadUNet(modelDir(bytes)), 'E_SHAPE', /conv_in\.weight/);
  });
  it('a missing weights file or folder', async () => {
    await expectCode(loadUNet(modelDir(null)), 'E_IO');
    await expectCode(loadUNet(path.join(tmp, 'does-not-exist')), 'E_IO');
  });
});

describe('configs', () => {
  it('a value of the wrong type', async () => {
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, layers_per_block: '1' })), 'E_CONFIG', /layers_per_block/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, block_out_channels: 16 })), 'E_CONFIG', /block_out_channels/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, norm_eps: NaN })), 'E_CONFIG', /norm_eps/);
    await expectCode(loadUNet(modelDir(goodWeights, '[1, 2]')), 'E_CONFIG');
    await expectCode(loadUNet(modelDir(goodWeights, '{"in_channels": ')), 'E_FORMAT');
  });
  it('inconsistent structure', async () => {
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, norm_num_groups: 5 })), 'E_CONFIG', /norm_num_groups/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, up_block_types: ['UpBlock2D'] })), 'E_CONFIG', /up_block_types/);
    // unet_basic has attention at its 32-channel level only; 12 does not divide 32.
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, attention_head_dim: 12 })), 'E_CONFIG', /attention_head_dim.*32/);
  });
  it('attention_head_dim constrains only the widths with attention, as in diffusers', async () => {
    // 32 does not divide the attention-free 16-channel level (a valid diffusers config, and the
    // training recipe's --channels 16,32): one head of 32 channels, the same model as no head size.
    const x = Tensor.fromFloat32(new Float32Array(2 * 3 * 16 * 16).map((_, i) => Math.sin(i)), [2, 3, 16, 16]);
    const outputs = [];
    for (const attention_head_dim of [32, null]) {
      const unet = await loadUNet(modelDir(goodWeights, { ...goodConfig, attention_head_dim }));
      const y = await unet.forward(x, [10, 500]);
      outputs.push(await y.toFloat32Array());
      y.dispose();
      unet.dispose();
    }
    x.dispose();
    expect(outputs[0]).toEqual(outputs[1]);
    expect(outputs[0].every(Number.isFinite)).toBe(true);
  });
  it('unsupported values name the key', async () => {
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D'] })), 'E_UNSUPPORTED', /down_block_types.*CrossAttnDownBlock2D/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, time_embedding_type: 'learned' })), 'E_UNSUPPORTED', /time_embedding_type/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, act_fn: 'gelu' })), 'E_UNSUPPORTED', /act_fn/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, _class_name: 'UNet2DConditionModel' })), 'E_UNSUPPORTED', /UNet2DConditionModel/);
  });
  it('a config that does not match the weights', async () => {
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, layers_per_block: 2 })), 'E_FORMAT', /down_blocks\.0\.resnets\.1/);
    await expectCode(loadUNet(modelDir(goodWeights, { ...goodConfig, block_out_channels: [32, 32] })), 'E_SHAPE');
  });
});

describe('forward arguments', () => {
  it('wrong channel count, wrong rank, bad sizes, bad timesteps and labels', async () => {
    const unet = await loadUNet(BASIC);
    const t4 = Tensor.fromFloat32(new Float32Array(4 * 16 * 16), [1, 4, 16, 16]);
    await expectCode(unet.forward(t4, 10), 'E_SHAPE', /4 channels/);
    const flat = Tensor.fromFloat32(new Float32Array(48), [3, 16]);
    await expectCode(unet.forward(flat, 10), 'E_SHAPE');
    const odd = Tensor.fromFloat32(new Float32Array(3 * 15 * 16), [1, 3, 15, 16]);
    await expectCode(unet.forward(odd, 10), 'E_SHAPE', /multiples of 2/);
    const x = Tensor.fromFloat32(new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
    await expectCode(unet.forward(x, [1, 2, 3]), 'E_SHAPE', /3 timesteps/);
    await expectCode(unet.forward(x, NaN), 'E_ARGUMENT');
    await expectCode(unet.forward(x, 10, { classLabels: [1, 2] }), 'E_ARGUMENT', /not class-conditional/);
    expect(() => Tensor.fromFloat32(new Float32Array(5), [2, 3])).toThrow(FusediffError);
    x.dispose();
    await expectCode(unet.forward(x, 10), 'E_DISPOSED');
    await expectCode(x.toFloat32Array(), 'E_DISPOSED');
    const y = Tensor.fromFloat32(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]);
    const out = await unet.forward(y, 10); // still healthy after every error above
    expect(out.shape).toEqual([1, 3, 16, 16]);
    unet.dispose();
    await expectCode(unet.forward(y, 10), 'E_DISPOSED');
  });

  it('class-conditional models check their labels', async () => {
    const unet = await loadUNet(path.join(__dirname, 'fixtures/diffusers/models/unet_cm_mirror'));
    const x = Tensor.fromFloat32(new Float32Array(3 * 16 * 16), [1, 3, 16, 16]);
    await expectCode(unet.forward(x, 10), 'E_ARGUMENT', /class label/);
    await expectCode(unet.forward(x, 10, { classLabels: [10] }), 'E_ARGUMENT', /outside/);
    await expectCode(unet.forward(x, 10, { classLabels: [1.5] }), 'E_ARGUMENT', /integers/);
    unet.dispose();
  });
});

it('copies of the fixture load (sanity for the cases above)', async () => {
  const dir = path.join(tmp, 'copy');
  mkdirSync(dir);
  copyFileSync(path.join(BASIC, 'config.json'), path.join(dir, 'config.json'));
  writeFileSync(path.join(dir, 'diffusion_pytorch_model.safetensors'), encode(splitWeights().header, splitWeights().data));
  const unet = await loadUNet(dir);
  expect(unet.info.parameterCount).toBe(177427);
  unet.dispose();
});
