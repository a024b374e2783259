/**
 * GPU benchmark through the API (npm run test:cuda): one-step consistency sampling
 * (openai/diffusers-cd_imagenet64_l2 config with seeded random weights from
 * test/helpers/random-model.ts, made in bench/.weights/ and reused; CMStochasticIterativeScheduler,
 * 1 step, batch 16, TF32) in images/s, end to end through Pipeline.generate (noise, forward, step
 * on the device, images). Forward latencies are measured by fusediff_cuda_tests (bench cases),
 * which needs no Node. Figures go to the results file.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadPipeline } from '../../lib/index.js';
import { MODELS, type BenchModel } from '../../bench/cases.js';
import { writeRandomModel } from '../helpers/random-model.js';
import { recordResult } from './results.js';

const WEIGHTS = path.resolve(__dirname, '..', '..', 'bench', '.weights');

function modelDir(model: BenchModel): string {
  const dir = path.join(WEIGHTS, model.id);
  const stampFile = path.join(dir, 'stamp.json');
  const stamp = JSON.stringify({ generator: 'test/helpers/random-model.ts', seed: model.seed, config: model.config });
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8') !== stamp) {
    mkdirSync(dir, { recursive: true });
    writeRandomModel(dir, model.config, model.seed);
    writeFileSync(stampFile, stamp);
  }
  return dir;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

it('one-step consistency sampling, images/s (cd_imagenet64 config, batch 16, tf32)', async () => {
  const dir = path.join(WEIGHTS, 'cd-imagenet64-pipeline');
  mkdirSync(path.join(dir, 'scheduler'), { recursive: true });
  writeFileSync(path.join(dir, 'model_index.json'), JSON.stringify({ _class_name: 'ConsistencyModelPipeline', unet: ['diffusers', 'UNet2DModel'], scheduler: ['diffusers', 'CMStochasticIterativeScheduler'] }));
  writeFileSync(
    path.join(dir, 'scheduler', 'scheduler_config.json'),
    JSON.stringify({ _class_name: 'CMStochasticIterativeScheduler', num_train_timesteps: 40, sigma_min: 0.002, sigma_max: 80.0, sigma_data: 0.5, s_noise: 1.0, rho: 7.0, clip_denoised: true }),
  );
  // The pipeline's unet/ is a copy of the benchmark weights' folder (no symlinks: path containment).
  const unetDir = path.join(dir, 'unet');
  const source = modelDir(MODELS.imagenet);
  if (!existsSync(path.join(unetDir, 'stamp.json')) || readFileSync(path.join(unetDir, 'stamp.json'), 'utf8') !== readFileSync(path.join(source, 'stamp.json'), 'utf8')) {
    mkdirSync(unetDir, { recursive: true });
    for (const f of ['config.json', 'diffusion_pytorch_model.safetensors', 'stamp.json'])
      writeFileSync(path.join(unetDir, f), readFileSync(path.join(source, f)));
  }
  const pipe = await loadPipeline(dir, { device: 'cuda' });
  try {
    const batch = 16;
    const options = { batchSize: batch, steps: 1, sampler: 'consistency' as const, classLabels: MODELS.imagenet.classLabel };
    await pipe.generate({ ...options, seed: 0 }); // warm-up
    const times: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const t0 = performance.now();
      const r = await pipe.generate({ ...options, seed: i });
      times.push(performance.now() - t0);
      expect(r.images).toHaveLength(batch);
    }
    const ms = median(times);
    recordResult('consistency', `one step, cd_imagenet64 config, batch ${batch}, tf32`, {
      medianMs: Number(ms.toFixed(2)),
      imagesPerSecond: Number(((1000 * batch) / ms).toFixed(1)),
    });
  } finally {
    pipe.dispose();
  }
});
