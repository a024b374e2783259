// npm run prebuild: builds the addon for this platform and places it where node-gyp-build
// looks first, prebuilds/<platform>-<arch>/node.napi.node (Node-API 8: one binary for every
// Node >= 20). The npm package ships these, so installing it needs no compiler and no
// install script. On Linux it also reports the newest glibc symbol version the binary needs.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const r = spawnSync('npx', ['cmake-js', 'compile', '--release', '--out', 'build'], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const dir = path.join('prebuilds', `${process.platform}-${process.arch}`);
mkdirSync(dir, { recursive: true });
const target = path.join(dir, 'node.napi.node');
copyFileSync(path.join('build', 'Release', 'fusediff.node'), target);
console.log(`wrote ${target}`);
if (process.platform === 'linux') {
  const symbols = execFileSync('objdump', ['-T', target], { encoding: 'utf8' });
  const versions = [...symbols.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const newest = versions.at(-1);
  if (newest) console.log(`requires glibc >= ${newest[0]}.${newest[1]}`);
}
