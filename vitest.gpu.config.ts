// The GPU suites (test/gpu/*.gpu.ts): run by `npm run test:cuda` only, never by npm test
// (whose config includes test/**/*.test.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/gpu/**/*.gpu.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
