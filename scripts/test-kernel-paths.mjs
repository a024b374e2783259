// Runs the diffusers fixture suites (UNet forwards and end-to-end sampling) once per CPU kernel path this machine can execute
// (FUSEDIFF_CPU=reference|generic|avx2|avx512), so every path is checked against diffusers,
// not only the one the CPU would pick; the fast paths run twice, with the float convolutions'
// default algorithms (Winograd for 3x3 stride-1 layers) and with FUSEDIFF_CONV=direct.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const addon = require('node-gyp-build')(process.cwd());
const { cpuFeatures } = addon.runtimeInfo();
const paths = ['reference', 'generic'];
if (cpuFeatures.avx2) paths.push('avx2');
if (cpuFeatures.avx512) paths.push('avx512');
for (const name of paths) {
  for (const conv of name === 'reference' ? ['auto'] : ['auto', 'direct']) {
    console.log(`\n== kernel path ${name}, FUSEDIFF_CONV=${conv}`);
    const r = spawnSync('npx', ['vitest', 'run', 'test/unet-fixtures.test.ts', 'test/e2e-fixtures.test.ts'], {
      stdio: 'inherit',
      env: { ...process.env, FUSEDIFF_CPU: name, FUSEDIFF_CONV: conv },
    });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
}
