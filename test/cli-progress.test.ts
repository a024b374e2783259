/** The CLI's progress output: a bar redrawn in place on a terminal, a few plain lines otherwise. */
import { expect, it } from 'vitest';
import { progressReporter } from '../lib/cli/progress.js';

function fakeStream(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream };
}

const steps = (n: number) => Array.from({ length: n }, (_, i) => ({ step: i + 1, totalSteps: n, timestep: 0, stepMs: 10, elapsedMs: 10 * (i + 1) }));

it('draws a bar in place on a TTY and ends its line', () => {
  const { writes, stream } = fakeStream(true);
  const r = progressReporter({ quiet: false, label: 'generate', stream });
  for (const p of steps(4)) r.onProgress(p);
  r.done();
  expect(writes).toHaveLength(5);
  expect(writes[0]).toMatch(/^\rgenerate \[#{8}-{22}\] 1\/4 /);
  expect(writes[3]).toMatch(/\[#{30}\] 4\/4 /);
  expect(writes[4]).toBe('\n');
});

it('writes about ten plain lines otherwise, and nothing when quiet', () => {
  const { writes, stream } = fakeStream(false);
  const r = progressReporter({ quiet: false, label: 'generate', stream });
  for (const p of steps(1000)) r.onProgress(p);
  expect(writes.length).toBeLessThanOrEqual(11);
  expect(writes.at(-1)).toBe('generate: step 1000/1000, 10000 ms\n');
  const q = fakeStream(true);
  const quiet = progressReporter({ quiet: true, label: 'x', stream: q.stream });
  quiet.onProgress(steps(1)[0]);
  quiet.done();
  expect(q.writes).toEqual([]);
});
