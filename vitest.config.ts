import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each file gets its own process: a native crash would name its file, and the thread
    // pools of parallel files would not fight over the two cores.
    pool: 'forks',
    fileParallelism: false,
  },
});
