// Bundles bench/run.ts (with the library sources and the test helpers it uses) into
// dist-bench/run.js. dist-bench/ sits one level below the package root, like dist/, so the
// bundled lib/native.ts finds the addon the same way. onnxruntime-node stays external.
import { defineConfig } from 'tsup';

export default defineConfig({
  entry: { run: 'bench/run.ts' },
  outDir: 'dist-bench',
  format: ['esm'],
  target: 'node20',
  dts: false,
  sourcemap: true,
  clean: true,
  shims: true,
  external: ['onnxruntime-node'],
});
