/**
 * Checkpoints load as published: both folder layouts, every weight form (safetensors,
 * legacy attention names, shards, fp16 variants, PyTorch .bin) giving the safetensors
 * original's forward bit for bit; the scheduler config found in either layout; and no path
 * from a file or a symlink leading outside the model folder.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSchedulerConfig, FusediffError, loadPipeline, loadUNet, locateModel, type FusediffErrorCode } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import {
  BASIC,
  basicWeights,
  identical,
  makeModel,
  referenceForward,
  weightForms,
  WEIGHTS,
  writeHalfRoundedWeights,
  type Layout,
} from './helpers/checkpoints.js';
import { writeSafetensors } from './helpers/safetensors.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-checkpoints-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let counter = 0;
const fresh = (name = 'm') => path.join(tmp, `${name}${counter++}`);

async function expectCode(promise: Promise<unknown>, code: FusediffErrorCode, pattern?: RegExp): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FusediffError);
  expect((err as FusediffError).code).toBe(code);
  if (pattern) expect((err as FusediffError).message).toMatch(pattern);
}

let reference: Float32Array;
let halfReference: Float32Array;
beforeAll(async () => {
  reference = await referenceForward(BASIC);
  halfReference = await referenceForward(makeModel(fresh('half'), 'model', writeHalfRoundedWeights));
});

describe('every layout and weight form gives the original forward, bit for bit', () => {
  for (const layout of ['model', 'pipeline'] as Layout[]) {
    for (const [form, spec] of Object.entries(weightForms)) {
      it(`${layout} folder, ${form}`, async () => {
        const root = fresh();
        const unet = makeModel(root, layout, spec.write);
        // fp16 weights run in float32: exactly the forward of the half-rounded weights.
        const expected = spec.half ? halfReference : reference;
        expect(identical(await referenceForward(root, { variant: spec.variant }), expected)).toBe(true);
        if (layout === 'pipeline') expect(identical(await referenceForward(unet, { variant: spec.variant }), expected)).toBe(true);
      });
    }
  }

  it('fp16 weights stay within 1% of the float32 forward', () => {
    const scale = maxAbsDiff(reference, new Float32Array(reference.length));
    expect(maxAbsDiff(halfReference, reference)).toBeLessThan(0.01 * scale);
    expect(identical(halfReference, reference)).toBe(false);
  });
});

describe('weight files and variants', () => {
  it('safetensors is preferred to .bin, and a variant is loaded only when asked for', async () => {
    const root = fresh();
    makeModel(root, 'model', (unet) => {
      weightForms.safetensors.write(unet);
      weightForms['PyTorch .bin'].write(unet);
      weightForms['fp16 safetensors variant'].write(unet);
    });
    const plain = await loadUNet(root);
    expect(plain.weightFiles.map((f) => path.basename(f))).toEqual([WEIGHTS]);
    plain.dispose();
    const half = await loadUNet(root, { variant: 'fp16' });
    expect(half.weightFiles.map((f) => path.basename(f))).toEqual(['diffusion_pytorch_model.fp16.safetensors']);
    half.dispose();
  });

  it('a missing variant, or only a variant, is explained', async () => {
    const onlyHalf = fresh();
    makeModel(onlyHalf, 'model', weightForms['fp16 safetensors variant'].write);
    await expectCode(loadUNet(onlyHalf), 'E_IO', /fp16 variant/);
    const onlyPlain = fresh();
    makeModel(onlyPlain, 'model', weightForms.safetensors.write);
    await expectCode(loadUNet(onlyPlain, { variant: 'fp16' }), 'E_IO', /weights without a variant/);
    await expectCode(loadUNet(onlyPlain, { variant: 'fp16' }), 'E_IO', /diffusion_pytorch_model\.fp16\.bin/);
  });

  it('a variant must be a plain name', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms.safetensors.write);
    for (const variant of ['../fp16', 'a/b', '', '.fp16'])
      await expectCode(loadUNet(root, { variant }), 'E_ARGUMENT', /variant/);
  });
});

describe('scheduler config location', () => {
  it('model folder: side by side', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms.safetensors.write);
    const layout = await locateModel(root);
    expect(layout).toMatchObject({ kind: 'model', root, unet: root, modelIndex: null });
    expect(layout.schedulerConfig).toBe(path.join(root, 'scheduler_config.json'));
    expect(await findSchedulerConfig(root)).toBe(layout.schedulerConfig);
  });

  it('pipeline folder, and its unet/ folder given alone', async () => {
    const root = fresh();
    const unet = makeModel(root, 'pipeline', weightForms.safetensors.write);
    const expected = path.join(root, 'scheduler', 'scheduler_config.json');
    expect(await locateModel(root)).toEqual({
      kind: 'pipeline',
      root,
      unet,
      schedulerConfig: expected,
      modelIndex: path.join(root, 'model_index.json'),
    });
    const component = await locateModel(unet);
    expect(component).toMatchObject({ kind: 'component', unet, schedulerConfig: expected });
    expect(await findSchedulerConfig(unet)).toBe(expected);
  });

  it('no scheduler config, and no model at all', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms.safetensors.write);
    rmSync(path.join(root, 'scheduler_config.json'));
    expect(await findSchedulerConfig(root)).toBeNull();
    const empty = fresh();
    mkdirSync(empty);
    await expectCode(locateModel(empty), 'E_IO', /config\.json/);
  });
});

describe('loadPipeline takes either layout', () => {
  it('a model folder, a pipeline folder and its unet/ folder give the same images', async () => {
    const model = fresh();
    makeModel(model, 'model', weightForms['PyTorch .bin'].write);
    const pipeline = fresh();
    const unet = makeModel(pipeline, 'pipeline', weightForms.safetensors.write);
    const images: Uint8ClampedArray[] = [];
    for (const dir of [model, pipeline, unet]) {
      const pipe = await loadPipeline(dir);
      images.push((await pipe.generate({ steps: 2, seed: 5 })).images[0].data);
      pipe.dispose();
    }
    expect(Buffer.from(images[1])).toEqual(Buffer.from(images[0]));
    expect(Buffer.from(images[2])).toEqual(Buffer.from(images[0]));
  });

  it("model_index.json's scheduler class wins over the config's, as in diffusers", async () => {
    // google/ddpm-cifar10-32 as first published: a GaussianDDPMScheduler config with "timesteps".
    const legacy = { _class_name: 'GaussianDDPMScheduler', beta_end: 0.02, beta_schedule: 'linear', beta_start: 0.0001, timesteps: 1000, variance_type: 'fixed_large' };
    const current = { _class_name: 'DDPMScheduler', beta_end: 0.02, beta_schedule: 'linear', beta_start: 0.0001, num_train_timesteps: 1000, variance_type: 'fixed_large' };
    const images: Uint8ClampedArray[] = [];
    for (const [scheduler, index] of [[current, false], [legacy, true]] as const) {
      const root = fresh();
      makeModel(root, 'model', weightForms.safetensors.write);
      writeFileSync(path.join(root, 'scheduler_config.json'), JSON.stringify(scheduler));
      if (index)
        writeFileSync(
          path.join(root, 'model_index.json'),
          JSON.stringify({ _class_name: 'DDPMPipeline', scheduler: ['diffusers', 'DDPMScheduler'], unet: ['diffusers', 'UNet2DModel'] }),
        );
      const pipe = await loadPipeline(root);
      images.push((await pipe.generate({ steps: 3, seed: 2 })).images[0].data);
      pipe.dispose();
      if (index) {
        rmSync(path.join(root, 'model_index.json'));
        await expectCode(loadPipeline(root), 'E_UNSUPPORTED', /GaussianDDPMScheduler/);
      }
    }
    expect(Buffer.from(images[1])).toEqual(Buffer.from(images[0]));
  });

  it('a model without a scheduler config is not a pipeline', async () => {
    const root = fresh();
    makeModel(root, 'model', weightForms.safetensors.write);
    rmSync(path.join(root, 'scheduler_config.json'));
    await expectCode(loadPipeline(root), 'E_IO', /scheduler_config\.json/);
  });
});

describe('nothing outside the model folder is read', () => {
  function sharded(map: Record<string, unknown>): string {
    const root = fresh();
    makeModel(root, 'model', (unet) => {
      writeSafetensors(path.join(unet, 'shard.safetensors'), basicWeights());
      writeFileSync(path.join(unet, `${WEIGHTS}.index.json`), JSON.stringify({ weight_map: map }));
    });
    return root;
  }

  it('shard names from index.json must be plain paths inside the folder', async () => {
    const outside = path.join(tmp, 'outside.safetensors');
    writeSafetensors(outside, basicWeights());
    for (const name of ['../outside.safetensors', outside, 'sub/../../outside.safetensors', 'a\\b.safetensors', './shard.safetensors'])
      await expectCode(loadUNet(sharded({ 'conv_in.weight': name })), 'E_UNSAFE', /not a plain path/);
    await expectCode(loadUNet(sharded({ 'conv_in.weight': 'shard.bin' })), 'E_CONFIG', /not a \.safetensors file/);
    await expectCode(loadUNet(sharded({ 'conv_in.weight': 7 })), 'E_CONFIG', /non-empty strings/);
    await expectCode(loadUNet(sharded({})), 'E_CONFIG', /no shards/);
    const ok = sharded({ 'conv_in.weight': 'shard.safetensors', 'conv_out.weight': 'shard.safetensors' });
    expect(identical(await referenceForward(ok), reference)).toBe(true);
  });

  it('symlinks that leave the folder are refused; symlinks inside it are followed', async () => {
    const elsewhere = fresh('elsewhere');
    mkdirSync(elsewhere);
    copyFileSync(path.join(BASIC, WEIGHTS), path.join(elsewhere, WEIGHTS));
    copyFileSync(path.join(BASIC, 'config.json'), path.join(elsewhere, 'config.json'));

    const weights = fresh();
    makeModel(weights, 'model', (unet) => symlinkSync(path.join(elsewhere, WEIGHTS), path.join(unet, WEIGHTS)));
    await expectCode(loadUNet(weights), 'E_UNSAFE', /outside the model folder/);

    const config = fresh();
    makeModel(config, 'model', weightForms.safetensors.write);
    rmSync(path.join(config, 'config.json'));
    symlinkSync(path.join(elsewhere, 'config.json'), path.join(config, 'config.json'));
    await expectCode(loadUNet(config), 'E_UNSAFE', /outside the model folder/);

    const pipeline = fresh();
    makeModel(pipeline, 'pipeline', weightForms.safetensors.write);
    rmSync(path.join(pipeline, 'unet'), { recursive: true });
    symlinkSync(elsewhere, path.join(pipeline, 'unet'));
    await expectCode(loadUNet(pipeline), 'E_UNSAFE', /outside the model folder/);

    const inside = fresh();
    makeModel(inside, 'model', (unet) => {
      weightForms.safetensors.write(unet);
      mkdirSync(path.join(unet, 'store'));
      copyFileSync(path.join(unet, WEIGHTS), path.join(unet, 'store', 'w'));
      rmSync(path.join(unet, WEIGHTS));
      symlinkSync(path.join('store', 'w'), path.join(unet, WEIGHTS));
    });
    expect(identical(await referenceForward(inside), reference)).toBe(true);
  });

  it("the Hugging Face cache's snapshot -> blob symlinks are followed", async () => {
    // models--google--x/snapshots/<rev>/unet/file -> ../../../blobs/<hash>, as huggingface_hub lays it out.
    const repo = fresh('models--test--unet');
    const blobs = path.join(repo, 'blobs');
    const snapshot = path.join(repo, 'snapshots', 'abc123');
    mkdirSync(blobs, { recursive: true });
    let blob = 0;
    const cached = (content: Buffer | string, relative: string) => {
      const name = `hash${blob++}`;
      writeFileSync(path.join(blobs, name), content);
      const at = path.join(snapshot, relative);
      mkdirSync(path.dirname(at), { recursive: true });
      symlinkSync(path.relative(path.dirname(at), path.join(blobs, name)), at);
    };
    cached(JSON.stringify({ _class_name: 'DDPMPipeline', unet: ['diffusers', 'UNet2DModel'] }), 'model_index.json');
    cached(readFileSync(path.join(BASIC, 'config.json')), 'unet/config.json');
    cached(readFileSync(path.join(BASIC, WEIGHTS)), `unet/${WEIGHTS}`);
    expect(identical(await referenceForward(snapshot), reference)).toBe(true);
    expect(identical(await referenceForward(path.join(snapshot, 'unet')), reference)).toBe(true);
  });
});
