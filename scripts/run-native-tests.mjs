// Runs the native unit tests built next to the addon (build/fusediff_native_tests), or the
// binary given as the first argument (e.g. a sanitizer build).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const binary = process.argv[2] ?? path.join('build', 'fusediff_native_tests');
if (!existsSync(binary)) {
  console.error(`native tests not built: ${binary} is missing (run npm run build:native)`);
  process.exit(1);
}
const result = spawnSync(binary, process.argv.slice(3), { stdio: 'inherit' });
process.exit(result.status ?? 1);
