/** The package version, read from the package.json above this file (lib/cli/ in development, dist/ when installed). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached) return cached;
  let dir = typeof __dirname === 'string' ? __dirname : path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++, dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!existsSync(file)) continue;
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'fusediff' && pkg.version) return (cached = pkg.version);
  }
  return (cached = 'unknown');
}
