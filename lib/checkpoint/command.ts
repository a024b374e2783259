/**
 * The function behind `fusediff convert <dir> [--variant NAME] [--overwrite]`: argument
 * parsing, the conversion and a one-line report, returning the process exit code, so that a
 * CLI entry point only has to dispatch to it.
 */
import { FusediffError } from '../errors.js';
import { convertCheckpoint, type ConvertCheckpointOptions } from './convert.js';

export const CONVERT_USAGE = 'usage: fusediff convert <model folder> [--variant NAME] [--overwrite]';

export interface CommandOutput {
  out(line: string): void;
  err(line: string): void;
}

const consoleOutput: CommandOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the command; resolves to the exit code (0 done, 1 failed, 2 bad usage). Never throws. */
export async function convertCommand(args: readonly string[], output: CommandOutput = consoleOutput): Promise<number> {
  const positional: string[] = [];
  const options: ConvertCheckpointOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-h' || a === '--help') {
      output.out(CONVERT_USAGE);
      return 0;
    } else if (a === '--overwrite') {
      options.overwrite = true;
    } else if (a === '--variant' && i + 1 < args.length) {
      options.variant = args[++i];
    } else if (a.startsWith('-')) {
      output.err(`unknown or incomplete option ${a}\n${CONVERT_USAGE}`);
      return 2;
    } else {
      positional.push(a);
    }
  }
  if (positional.length !== 1) {
    output.err(CONVERT_USAGE);
    return 2;
  }
  try {
    const r = await convertCheckpoint(positional[0], options);
    output.out(`wrote ${r.output}: ${r.tensors} tensors, ${r.bytes} bytes, from ${r.sources.join(', ')}`);
    return 0;
  } catch (e) {
    output.err(e instanceof FusediffError ? e.message : `unexpected error: ${String(e)}`);
    return 1;
  }
}
