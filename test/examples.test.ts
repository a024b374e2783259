/**
 * The README's examples are files in examples/ (the README shows them); each must run to
 * completion against the built package.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureDist, root } from './helpers/dist.js';

const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.mjs'));

// Examples write their outputs (e.g. tiles/*.png) to the working directory.
const cwd = mkdtempSync(path.join(os.tmpdir(), 'fusediff-examples-'));

beforeAll(() => ensureDist(), 300_000);
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

it('the README refers to every example', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const f of examples) expect(readme, f).toContain(`examples/${f}`);
});

for (const file of examples)
  it(`examples/${file} runs`, () => {
    const r = spawnSync(process.execPath, [path.join(root, 'examples', file)], { encoding: 'utf8', cwd });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
