/**
 * The README's examples are files in examples/ (the README shows them); each must run to
 * completion against the built package.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { ensureDist, root } from './helpers/dist.js';

const examples = readdirSync(path.join(root, 'examples')).filter((f) => f.endsWith('.mjs'));

beforeAll(() => ensureDist(), 300_000);

it('the README refers to every example', () => {
  const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
  for (const f of examples) expect(readme, f).toContain(`examples/${f}`);
});

for (const file of examples)
  it(`examples/${file} runs`, () => {
    const r = spawnSync(process.execPath, [path.join(root, 'examples', file)], { encoding: 'utf8', cwd: root });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
