// Bundles test/gpu/checks.ts (with the library sources and the test helpers it uses) into
// dist-gpu/checks.js, a plain Node program: a GPU machine runs it without vitest or the
// dev dependencies (it needs the built addon and node-gyp-build). dist-gpu/ sits one level
// below the package root, like dist/, so the bundled lib/native.ts finds the addon.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { checks: 'test/gpu/checks.ts' },
  outDir: 'dist-gpu',
  format: ['esm'],
  target: 'node20',
  dts: false,
  sourcemap: true,
  clean: true,
  shims: true,
});
