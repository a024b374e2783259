/** Collects figures of the GPU suites into a JSON file (FUSEDIFF_GPU_RESULTS) for scripts/test-cuda.mjs. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export function recordResult(section: string, name: string, values: Record<string, number | string>): void {
  const file = process.env.FUSEDIFF_GPU_RESULTS;
  console.log(`${section} | ${name} | ${JSON.stringify(values)}`);
  if (!file) return;
  const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, Record<string, unknown>>) : {};
  all[section] = { ...(all[section] ?? {}), [name]: values };
  writeFileSync(file, JSON.stringify(all, null, 2));
}
