/**
 * The README's table of public checkpoints known to load: each config's parameter count and
 * forward cost, computed from the config alone (expectedWeights, expectedPlan + opFlops),
 * so the table cannot drift from what the planner builds.
 */
import { describe, expect, it } from 'vitest';
import { expectedPlan, expectedWeights, opFlops, parseUNet2DConfig } from '../lib/index.js';
import { CD_BEDROOM256_LPIPS, CD_IMAGENET64_L2, DDPM_CELEBAHQ_256, DDPM_CIFAR10_32 } from './helpers/configs.js';

const table = [
  { id: 'google/ddpm-cifar10-32', config: DDPM_CIFAR10_32, parameters: 35_746_307, gflop: 12.4 },
  { id: 'google/ddpm-celebahq-256', config: DDPM_CELEBAHQ_256, parameters: 113_673_219, gflop: 497.0 },
  { id: 'openai/diffusers-cd_imagenet64_l2', config: CD_IMAGENET64_L2, parameters: 295_899_267, gflop: 219.3 },
  { id: 'openai/diffusers-cd_bedroom256_lpips', config: CD_BEDROOM256_LPIPS, parameters: 526_304_771, gflop: 2238.7 },
];

describe('known checkpoints', () => {
  for (const row of table) {
    it(`${row.id}: ${(row.parameters / 1e6).toFixed(1)}M parameters, ${row.gflop} GFLOP per image`, () => {
      const config = parseUNet2DConfig(row.config, row.id);
      const parameters = expectedWeights(config).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
      expect(parameters).toBe(row.parameters);
      const size = config.sample_size as number;
      const flops = opFlops(expectedPlan(config), 1, size, size).reduce((a, b) => a + b, 0);
      expect(Math.round(flops / 1e8) / 10).toBe(row.gflop);
    });
  }
});
