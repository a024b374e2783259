/**
 * Every scheduler trace of test/fixtures/diffusers/schedulers reproduced from the scheduler
 * config alone (our own β/ᾱ/σ tables, timesteps and step arithmetic), replaying the recorded
 * model outputs and noise. Each step's outputs are compared with diffusers' float64
 * reference (`*_f64`) within the case's stated absolute tolerance; the tables and timesteps
 * are compared with diffusers' float32 tables.
 */
import { describe, expect, it } from 'vitest';
import {
  CMStochasticIterativeScheduler,
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  parsePythonJson,
  ScoreSdeVeScheduler,
  ScoreSdeVpScheduler,
  type Tensor,
} from '../lib/index.js';
import { maxAbsDiff } from './helpers/compare.js';
import { numbers } from './helpers/safetensors.js';
import { ErrorLog, loadCase, row, rowNumbers, whole, type TraceCase } from './helpers/trace.js';

const REPORT: string[] = [];

async function expectClose(log: ErrorLog, what: string, got: Tensor | null, c: TraceCase, name: string, i: number) {
  expect(got, `${what} at step ${i}`).not.toBeNull();
  const err = maxAbsDiff(await got!.toFloat32Array(), rowNumbers(c.tensors.get(`${name}_f64`)!, i));
  log.add(what, err);
  expect(err, `${c.name}: ${what} at step ${i}`).toBeLessThanOrEqual(c.tolerance);
}

/** max relative difference of two tables. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-30));
  return m;
}

const CASES = [
  'ddpm_linear_fixedsmall_eps_clip',
  'ddpm_scaledlinear_fixedlarge_v_noclip',
  'ddpm_cos_learnedrange_eps',
  'ddpm_sigmoid_fixedsmall_sample',
  'ddim_leading_eta0_alpha1',
  'ddim_leading_offset1_eta05_alpha0',
  'ddim_trailing_eta0_v',
  'ddim_linspace_eta05',
  'ddim_trailing_zsnr_v_eta05',
  'cm_onestep',
  'cm_multistep_22_0',
  'sde_ve',
  'sde_vp',
  'euler_linspace_eps',
  'euler_karras_leading_v',
  'euler_ancestral_trailing_eps',
  'dpmpp2m_karras',
];

describe('diffusers scheduler traces', () => {
  for (const name of CASES) {
    it(`${name} matches diffusers`, async () => {
      const c = loadCase('schedulers', name);
      const log = new ErrorLog();
      const config = parsePythonJson(c.configText, name) as Record<string, unknown>;
      const T = c.tensors;
      const steps = c.json.num_steps as number;
      const timesteps = numbers(T.get('timesteps')!);
      let x = whole(T.get('x_init')!);
      const drawn = T.get('noise_drawn') ? numbers(T.get('noise_drawn')!) : null;
      const klass = c.json.scheduler_class as string;

      if (klass === 'DDPMScheduler' || klass === 'DDIMScheduler') {
        const s = klass === 'DDPMScheduler' ? new DDPMScheduler(config) : new DDIMScheduler(config);
        s.setTimesteps(c.json.set_timesteps_call.num_inference_steps);
        expect(s.timesteps).toEqual(timesteps);
        log.add('table.alphas_cumprod (rel)', relDiff(s.alphasCumprod, numbers(T.get('table.alphas_cumprod')!)));
        for (let i = 0; i < steps; i++) {
          const m = row(T.get('model_outputs')!, i);
          let noise: Tensor | undefined;
          if (T.get('variance_noise')) noise = row(T.get('variance_noise')!, i);
          else if (drawn?.[i]) noise = row(T.get('noise')!, i);
          const out =
            s instanceof DDIMScheduler
              ? await s.step(m, timesteps[i], x, { eta: c.json.step_kwargs.eta, noise })
              : await s.step(m, timesteps[i], x, { noise });
          await expectClose(log, 'prev_sample', out.prevSample, c, 'prev_sample', i);
          await expectClose(log, 'pred_original_sample', out.predOriginalSample, c, 'pred_original_sample', i);
          x.dispose();
          x = out.prevSample;
          out.predOriginalSample?.dispose();
        }
      } else if (klass === 'CMStochasticIterativeScheduler') {
        const s = new CMStochasticIterativeScheduler(config);
        const call = c.json.set_timesteps_call;
        s.setTimesteps(call.timesteps ? { timesteps: call.timesteps } : call.num_inference_steps);
        expect(s.initNoiseSigma).toBe(c.json.init_noise_sigma);
        log.add('timesteps (rel)', relDiff(s.timesteps, timesteps));
        expect(relDiff(s.timesteps, timesteps)).toBeLessThan(1e-12);
        expect(Array.from(s.sigmas)).toEqual(numbers(T.get('table.sigmas')!));
        for (let i = 0; i < steps; i++) {
          const scaled = await s.scaleModelInput(x, s.timesteps[i]);
          await expectClose(log, 'scaled_input', scaled, c, 'scaled_input', i);
          scaled.dispose();
          const noise = drawn?.[i] ? row(T.get('noise')!, i) : undefined;
          const out = await s.step(row(T.get('model_outputs')!, i), s.timesteps[i], x, { noise });
          await expectClose(log, 'prev_sample', out.prevSample, c, 'prev_sample', i);
          x.dispose();
          x = out.prevSample;
          out.predOriginalSample?.dispose();
        }
      } else if (klass === 'ScoreSdeVeScheduler') {
        const s = new ScoreSdeVeScheduler(config);
        s.setTimesteps(c.json.set_timesteps_call.num_inference_steps);
        expect(s.timesteps).toEqual(timesteps);
        log.add('table.sigmas (rel)', relDiff(s.sigmas, numbers(T.get('table.sigmas')!)));
        log.add('table.discrete_sigmas (rel)', relDiff(s.discreteSigmas, numbers(T.get('table.discrete_sigmas')!)));
        expect(relDiff(s.discreteSigmas, numbers(T.get('table.discrete_sigmas')!))).toBeLessThan(1e-6);
        const sigmaIndex = numbers(T.get('sigma_index')!);
        for (let i = 0; i < steps; i++) {
          expect(s.sigmaIndex(s.timesteps[i])).toBe(sigmaIndex[i * x.shape[0]]);
          const corrected = await s.stepCorrect(row(T.get('model_outputs_correct')!, i), x, { noise: row(T.get('noise_correct')!, i) });
          await expectClose(log, 'corrected_sample', corrected.prevSample, c, 'corrected_sample', i);
          x.dispose();
          x = corrected.prevSample;
          const out = await s.stepPred(row(T.get('model_outputs')!, i), s.timesteps[i], x, { noise: row(T.get('noise_pred')!, i) });
          await expectClose(log, 'prev_sample', out.prevSample, c, 'prev_sample', i);
          await expectClose(log, 'prev_sample_mean', out.prevSampleMean, c, 'prev_sample_mean', i);
          x.dispose();
          out.prevSampleMean.dispose();
          x = out.prevSample;
        }
      } else if (klass === 'ScoreSdeVpScheduler') {
        const s = new ScoreSdeVpScheduler(config);
        s.setTimesteps(c.json.set_timesteps_call.num_inference_steps);
        expect(s.timesteps).toEqual(timesteps);
        for (let i = 0; i < steps; i++) {
          const out = await s.stepPred(row(T.get('model_outputs')!, i), x, new Array(x.shape[0]).fill(s.timesteps[i]), {
            noise: row(T.get('noise')!, i),
          });
          await expectClose(log, 'prev_sample', out.prevSample, c, 'prev_sample', i);
          await expectClose(log, 'prev_sample_mean', out.prevSampleMean, c, 'prev_sample_mean', i);
          x.dispose();
          out.prevSampleMean.dispose();
          x = out.prevSample;
        }
      } else {
        const s =
          klass === 'EulerDiscreteScheduler'
            ? new EulerDiscreteScheduler(config)
            : klass === 'EulerAncestralDiscreteScheduler'
              ? new EulerAncestralDiscreteScheduler(config)
              : new DPMSolverMultistepScheduler(config);
        s.setTimesteps(c.json.set_timesteps_call.num_inference_steps);
        const sigmaErr = relDiff(s.sigmas, numbers(T.get('table.sigmas')!));
        log.add('table.sigmas (rel)', sigmaErr);
        expect(sigmaErr).toBeLessThan(2e-6);
        // Karras timesteps come from a float32 log-σ table: equal up to float32 rounding.
        log.add('timesteps', maxAbsDiff(s.timesteps, timesteps));
        expect(maxAbsDiff(s.timesteps, timesteps)).toBeLessThanOrEqual(2e-4 * 1000);
        if (!config.use_karras_sigmas) expect(s.timesteps).toEqual(timesteps);
        expect(Math.abs(s.initNoiseSigma - c.json.init_noise_sigma)).toBeLessThanOrEqual(1e-6 * c.json.init_noise_sigma);
        for (let i = 0; i < steps; i++) {
          const t = s.timesteps[i];
          const scaled = await s.scaleModelInput(x, t);
          await expectClose(log, 'scaled_input', scaled, c, 'scaled_input', i);
          if (scaled !== x) scaled.dispose();
          const noise = drawn?.[i] ? row(T.get('noise')!, i) : undefined;
          const out = await s.step(row(T.get('model_outputs')!, i), t, x, { noise });
          await expectClose(log, 'prev_sample', out.prevSample, c, 'prev_sample', i);
          if (T.get('pred_original_sample_f64'))
            await expectClose(log, 'pred_original_sample', out.predOriginalSample, c, 'pred_original_sample', i);
          x.dispose();
          x = out.prevSample;
          if (!(s as { retainsPredOriginal?: boolean }).retainsPredOriginal) out.predOriginalSample?.dispose();
        }
      }
      x.dispose();
      REPORT.push(`${name} (tol ${c.tolerance.toExponential(2)}): ${log.summary()}`);
      console.log(REPORT[REPORT.length - 1]);
    });
  }
});
