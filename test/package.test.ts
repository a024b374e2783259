/**
 * The npm package as users get it: `npm pack`, install the tarball into a fresh project with
 * install scripts disabled and no compiler on PATH, then import it from ESM and CommonJS and
 * run a forward. Also: the tarball holds no build tree, and the prebuilt binary links
 * against nothing but the C library.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDist } from './helpers/dist.js';

const root = path.resolve(__dirname, '..');
const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'node.napi.node');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'fusediff-package-'));
let tarball = '';
let app = '';
let packed: { path: string; size: number }[] = [];

function npm(args: string[], cwd: string): string {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(() => {
  ensureDist();
  npm(['run', 'prebuild'], root); // always: a stale binary would test yesterday's addon (incremental, quick when built)
  const out = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root)) as { filename: string; files: { path: string; size: number }[] }[];
  tarball = path.join(tmp, out[0].filename);
  packed = out[0].files;
  app = path.join(tmp, 'app');
  cpSync(path.join(root, 'test', 'fixtures', 'diffusers', 'models', 'unet_basic'), path.join(app, 'model'), { recursive: true });
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
}, 300_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

it('ships the embedded models, within 20 MB, without training leftovers', () => {
  const models = packed.filter((f) => f.path.startsWith('models/'));
  for (const m of ['tiles32', 'tiles32-teacher'])
    for (const f of ['model_index.json', 'unet/config.json', 'unet/diffusion_pytorch_model.safetensors', 'scheduler/scheduler_config.json', 'reference_io.safetensors'])
      expect(models.map((x) => x.path)).toContain(`models/${m}/${f}`);
  expect(models.every((f) => /\.(json|safetensors)$/.test(f.path))).toBe(true);
  const bytes = models.reduce((sum, f) => sum + f.size, 0);
  expect(bytes).toBeLessThanOrEqual(20 * 2 ** 20);
});

it('ships dist, prebuilds, models and README only', () => {
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
  expect(listing).toContain('package/dist/index.js');
  expect(listing).toContain('package/dist/index.cjs');
  expect(listing).toContain('package/dist/index.d.ts');
  expect(listing).toContain('package/dist/cli.js');
  expect(listing).toContain(`package/prebuilds/${process.platform}-${process.arch}/node.napi.node`);
  for (const f of listing) expect(f).not.toMatch(/^package\/(build|native|test|lib|cuda|training|node_modules|scripts)\//);
  // No install-time scripts: the package works with --ignore-scripts and npm's allowScripts policy.
  const pkg = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as { scripts?: Record<string, string> };
  for (const hook of ['preinstall', 'install', 'postinstall']) expect(pkg.scripts?.[hook]).toBeUndefined();
});

it('loads from ESM and CommonJS with no compiler on PATH', () => {
  const script = (imp: string) => `
    ${imp}
    const unet = await loadUNet('./model');
    const y = await unet.forward(Tensor.fromFloat32(new Float32Array(768), [1, 3, 16, 16]), 10);
    console.log(JSON.stringify({ shape: y.shape, finite: (await y.toFloat32Array()).every(Number.isFinite) }));`;
  writeFileSync(path.join(app, 'esm.mjs'), script("import { loadUNet, Tensor } from 'fusediff';"));
  writeFileSync(path.join(app, 'cjs.cjs'), `(async () => { ${script("const { loadUNet, Tensor } = require('fusediff');")} })();`);
  // PATH holds only a link to node: no cc, g++, cmake or make to fall back on.
  const bin = path.join(tmp, 'bin');
  mkdirSync(bin, { recursive: true });
  if (!existsSync(path.join(bin, 'node'))) symlinkSync(process.execPath, path.join(bin, 'node'));
  const env = { PATH: bin, HOME: tmp };
  for (const file of ['esm.mjs', 'cjs.cjs']) {
    const r = spawnSync(path.join(bin, 'node'), [file], { cwd: app, env, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({ shape: [1, 3, 16, 16], finite: true });
  }
  for (const tool of ['cc', 'g++', 'cmake', 'make']) {
    expect(spawnSync('/bin/sh', ['-c', `command -v ${tool}`], { env }).status).not.toBe(0);
  }
});

it('installs the fusediff command (npx fusediff)', () => {
  const bin = path.join(app, 'node_modules', '.bin', 'fusediff');
  const r = spawnSync(bin, ['info', './model', '--json'], { cwd: app, encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(JSON.parse(r.stdout)).toMatchObject({ kind: 'unet', parameters: 177427 });
  expect(spawnSync(bin, ['--help'], { cwd: app, encoding: 'utf8' }).stdout).toMatch(/^Usage: fusediff <command>/);
  // The embedded model, from the installed package: no --model needed.
  const g = spawnSync(bin, ['generate', '--class', 'wall', '--seed', '1', '--out', 'tiles', '--quiet'], { cwd: app, encoding: 'utf8' });
  expect(g.stderr).toBe('');
  expect(existsSync(path.join(app, 'tiles', 'image-1.png'))).toBe(true);
});

it('a missing prebuild says how to build from source', () => {
  const installed = path.join(app, 'node_modules', 'fusediff');
  rmSync(path.join(installed, 'prebuilds'), { recursive: true, force: true });
  const r = spawnSync(process.execPath, ['-e', "require('fusediff').runtimeInfo()"], { cwd: app, encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/E_BACKEND_UNAVAILABLE/);
  expect(r.stderr).toMatch(/build from source/);
});

it.runIf(process.platform === 'linux')('the prebuilt binary needs only the C library', () => {
  const deps = execFileSync('ldd', [prebuild], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s/)[0])
    .filter(Boolean);
  for (const d of deps) expect(d).toMatch(/^(linux-vdso\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|\/lib64\/ld-linux|ld-linux)/);
});
