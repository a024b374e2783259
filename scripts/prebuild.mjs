// npm run prebuild: builds the addon for this platform and places it where node-gyp-build
// looks first, prebuilds/<platform>-<arch>/node.napi.node (Node-API 8: one binary for every
// Node >= 20). The npm package ships these, so installing it needs no compiler and no
// install script. On Linux it also reports the newest glibc symbol version the binary needs.
// When the build made the CUDA backend (a CUDA toolkit was found), libfusediff_cuda.so goes
// beside the addon, where the addon looks for it when a model is loaded with device 'cuda'.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const r = spawnSync('npx', ['cmake-js', 'compile', '--release', '--out', 'build'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const dir = path.join('prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
const target = path.join(dir, 'node.napi.node');
copyFileSync(path.join('build', 'Release', 'fusediff.node'), target);
console.log(`wrote ${target}`);
const cudaLibrary = path.join('build', 'Release', 'libfusediff_cuda.so');
const cudaTarget = path.join(dir, 'libfusediff_cuda.so');
if (existsSync(cudaLibrary)) {
  copyFileSync(cudaLibrary, cudaTarget);
  console.log(`wrote ${cudaTarget} (${(statSync(cudaTarget).size / 2 ** 20).toFixed(1)} MiB, CUDA runtime linked statically)`);
} else {
  rmSync(cudaTarget, { force: true }); // no CUDA toolkit in this build: ship none rather than a stale one
  console.log('no CUDA backend in this build (no CUDA toolkit found): the package runs on the CPU only');
}
if (process.platform === 'linux') {
  const symbols = execFileSync('objdump', ['-T', target], { encoding: 'utf8' });
  const versions = [...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const newest = versions.at(-1);
  if (newest) console.log(`requires glibc >= ${newest[0]}.${newest[1]}`);
}
