import { defineConfig } from 'tsup';

export default defineConfig({
  // cli: the `fusediff` command (package.json "bin"); esbuild keeps its shebang and tsup marks it executable.
  entry: { index: 'lib/index.ts', cli: 'lib/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  // import.meta.url and __dirname both work in either output format.
  shims: true,
});
