/**
 * Whole samplings, CPU against CUDA, same pipeline and seed: the fixture pipelines (DDIM 10
 * steps, DDPM 20 steps, predictor-corrector with the Langevin corrector, consistency 1 and 2
 * steps; forward and steps on the device) generate on both devices; images must agree within
 * a few 8-bit levels (fp32: at most 1 level, from rounding at a level boundary; tf32: the
 * limits below). The largest and mean differences go to the results file.
 */
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { loadPipeline, type GenerateOptions } from '../../lib/index.js';
import { recordResult } from './results.js';

const PIPELINES = path.join(__dirname, '..', 'fixtures', 'pipelines');

const CASES: { name: string; dir: string; options: GenerateOptions }[] = [
  { name: 'ddim10', dir: 'ddim', options: { batchSize: 4, steps: 10, seed: 1234, sampler: 'ddim' } },
  { name: 'ddpm20', dir: 'ddim', options: { batchSize: 4, steps: 20, seed: 5, sampler: 'ddpm' } },
  { name: 'pc10', dir: 'ddim', options: { batchSize: 4, steps: 10, seed: 6, sampler: 'pc' } },
  { name: 'consistency1', dir: 'cm', options: { batchSize: 4, steps: 1, seed: 99, sampler: 'consistency' } },
  { name: 'consistency2', dir: 'cm', options: { batchSize: 4, steps: 2, seed: 7, sampler: 'consistency' } },
];

const LIMITS = { fp32: { max: 1, mean: 0.01 }, tf32: { max: 16, mean: 1 } } as const;

const opened: { dispose(): void }[] = [];
afterAll(() => opened.forEach((p) => p.dispose()));

for (const c of CASES) {
  for (const precision of ['fp32', 'tf32'] as const) {
    it(`${c.name}: CUDA ${precision} images match the CPU's`, async () => {
      const cpu = await loadPipeline(path.join(PIPELINES, c.dir));
      const gpu = await loadPipeline(path.join(PIPELINES, c.dir), { device: 'cuda', precision });
      opened.push(cpu, gpu);
      const a = await cpu.generate(c.options);
      const b = await gpu.generate(c.options);
      let max = 0;
      let sum = 0;
      let count = 0;
      for (let i = 0; i < a.images.length; i++) {
        const x = a.images[i].data;
        const y = b.images[i].data;
        for (let j = 0; j < x.length; j++) {
          const d = Math.abs(x[j] - y[j]);
          max = Math.max(max, d);
          sum += d;
          count++;
        }
      }
      const mean = sum / count;
      recordResult('sampling', `${c.name} ${precision}`, { maxLevels: max, meanLevels: Number(mean.toFixed(4)) });
      expect(max).toBeLessThanOrEqual(LIMITS[precision].max);
      expect(mean).toBeLessThanOrEqual(LIMITS[precision].mean);
    });
  }
}
