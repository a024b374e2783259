/** Tests that run the built package (CLI, workers, examples) rebuild dist/ when lib/ is newer. */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(__dirname, '..', '..');

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export function ensureDist(): void {
  const outputs = ['index.js', 'cli.js'].map((f) => path.join(root, 'dist', f));
  const built = outputs.every(existsSync) ? Math.min(...outputs.map((f) => statSync(f).mtimeMs)) : 0;
  if (built < newest(path.join(root, 'lib'))) execFileSync('npm', ['run', 'build:ts'], { cwd: root, stdio: 'ignore' });
}
