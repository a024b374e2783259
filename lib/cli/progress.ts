/**
 * Progress on stderr (stdout stays for results and --json): a bar redrawn in place on a
 * terminal, plain lines otherwise (logs, CI) — about ten of them per run, not one per step.
 */
import type { Progress } from '../sampling/loop.js';

export interface ProgressReporter {
  onProgress(p: Progress): void;
  /** Ends the bar's line. */
  done(): void;
}

export function progressReporter(options: { quiet: boolean; label: string; stream?: NodeJS.WriteStream }): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return { onProgress: () => {}, done: () => {} };
  if (stream.isTTY) {
    let drawn = false;
    return {
      onProgress(p) {
        const width = 30;
        const filled = Math.round((p.step / p.totalSteps) * width);
        const eta = p.step > 0 ? ((p.elapsedMs / p.step) * (p.totalSteps - p.step)) / 1000 : 0;
        stream.write(
          `\r${options.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.step}/${p.totalSteps} ${(p.elapsedMs / 1000).toFixed(1)}s (eta ${eta.toFixed(1)}s)\x1b[K`,
        );
        drawn = true;
      },
      done() {
        if (drawn) stream.write('\n');
      },
    };
  }
  let lastTenth = -1;
  return {
    onProgress(p) {
      const tenth = Math.floor((p.step / p.totalSteps) * 10);
      if (tenth === lastTenth && p.step !== p.totalSteps) return;
      lastTenth = tenth;
      stream.write(`${options.label}: step ${p.step}/${p.totalSteps}, ${Math.round(p.elapsedMs)} ms\n`);
    },
    done() {},
  };
}
