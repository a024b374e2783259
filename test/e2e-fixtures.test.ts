/**
 * End-to-end sampling against diffusers (test/fixtures/diffusers/e2e): a tiny UNet from
 * models/ driven by a scheduler, with the recorded latents and noise. Every step's model
 * input, model output and sample are compared with diffusers' float64 reference within the
 * case's tolerance; then the same run through sampleLoop (the library's loop) must give the
 * same final sample. (On the device of helpers/device.ts: the CPU, or CUDA under npm run test:cuda.)
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadUNet, parsePythonJson, sampleLoop, schedulerFromConfig, type Scheduler, type Tensor } from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { deviceOptions, deviceTolerance } from './helpers/device.js';
import { numbers } from './helpers/safetensors.js';
import { ErrorLog, loadCase, row, rowNumbers, whole } from './helpers/trace.js';

const CASES = ['ddim10_unet_basic', 'ddpm20_unet_basic', 'cm_onestep_unet_cm_mirror', 'cm_2step_22_0_unet_cm_mirror'];

describe('diffusers end-to-end sampling', () => {
  for (const name of CASES) {
    it(`${name} matches diffusers step by step`, async () => {
      const c = loadCase('e2e', name);
      const T = c.tensors;
      const log = new ErrorLog();
      const unet = await loadUNet(path.join(c.dir, c.json.model_folder), deviceOptions());
      const config = parsePythonJson(c.configText, name) as Record<string, unknown>;
      const scheduler = schedulerFromConfig(config) as Scheduler;
      const call = c.json.set_timesteps_call;
      const steps = call.timesteps ? { timesteps: call.timesteps } : call.num_inference_steps;
      (scheduler.setTimesteps as (s: unknown) => void).call(scheduler, steps);
      const timesteps = numbers(T.get('timesteps')!);
      expect(Math.max(...scheduler.timesteps.map((t, i) => Math.abs(t - timesteps[i])))).toBeLessThanOrEqual(1e-9 * 2000);
      const labels = T.get('class_labels') ? numbers(T.get('class_labels')!) : undefined;
      const drawn = T.get('noise_drawn') ? numbers(T.get('noise_drawn')!) : null;
      const eta = c.json.step_kwargs?.eta;
      const compare = async (what: string, got: Tensor, key: string, i: number) => {
        const want = rowNumbers(T.get(`${key}_f64`)!, i);
        const err = maxAbsDiff(await got.toFloat32Array(), want);
        log.add(what, err);
        expect(err, `${name} ${what} step ${i}`).toBeLessThanOrEqual(deviceTolerance(c.tolerance, Math.max(...Array.from(want, Math.abs))));
      };
      let x = whole(T.get('x_init')!);
      for (let i = 0; i < c.json.num_steps; i++) {
        const t = scheduler.timesteps[i];
        const input = await scheduler.scaleModelInput(x, t);
        await compare('model_input', input, 'model_input', i);
        const out = await unet.forward(input, t, labels ? { classLabels: labels } : {});
        await compare('model_output', out, 'model_output', i);
        const noise = drawn?.[i] ? row(T.get('noise')!, i) : undefined;
        const r = await scheduler.step(out, t, x, { noise, ...(eta !== undefined ? { eta } : {}) } as object);
        await compare('sample', r.prevSample, 'sample', i);
        if (input !== x) input.dispose();
        x.dispose();
        out.dispose();
        r.predOriginalSample?.dispose();
        x = r.prevSample;
      }
      // The library's loop, given the same latents and noise, lands on the same sample.
      const latents = whole(T.get('x_init')!);
      const res = await sampleLoop({
        model: unet,
        scheduler,
        steps,
        shape: latents.shape,
        latents,
        classLabels: labels,
        stepOptions: eta !== undefined ? { eta } : {},
        noiseAt: (i) => (drawn?.[i] ? row(T.get('noise')!, i) : undefined),
      });
      const final = await res.sample.toFloat32Array();
      const n = c.json.num_steps - 1;
      const wantFinal = rowNumbers(T.get('sample_f64')!, n);
      const err = maxAbsDiff(final, wantFinal);
      log.add('sampleLoop final', err);
      expect(err).toBeLessThanOrEqual(deviceTolerance(c.tolerance, Math.max(...Array.from(wantFinal, Math.abs))));
      expect(maxAbsDiff(final, await x.toFloat32Array())).toBe(0);
      console.log(`${name} (tol ${c.tolerance.toExponential(2)}): ${log.summary()}`);
      x.dispose();
      unet.dispose();
    });
  }
});
