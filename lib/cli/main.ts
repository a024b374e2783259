#!/usr/bin/env node
/**
 * The `fusediff` command: dispatches to one file per command. Every failure is one line on
 * stderr, `fusediff: <message> [E_CODE]`; exit status 1 for errors, 2 for usage mistakes.
 */
import { FusediffError } from '../errors.js';
import { helpText, parseCommandLine, UsageError, type Command } from './args.js';
import { bench } from './bench.js';
import { convert } from './convert.js';
import { exportOnnxCli } from './export-onnx.js';
import { generate } from './generate.js';
import { info } from './info.js';
import { quantize } from './quantize.js';
import { packageVersion } from './version.js';

const COMMANDS: Command[] = [generate, info, bench, convert, exportOnnxCli, quantize];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: fusediff <command> [options]',
    '',
    'Run diffusion models fast from Node.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "fusediff <command> --help" for a command\'s options; "fusediff --version" for the version.',
    '',
  ].join('\n');
}

/** One line, whatever went wrong: file-system errors become E_IO, anything unexpected E_INTERNAL. */
function errorLine(e: unknown): string {
  if (e instanceof FusediffError) return e.message;
  if (e instanceof UsageError) return `${e.message} [E_ARGUMENT]`;
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.syscall === 'string') return `${err.message} [E_IO]`;
  return `${err instanceof Error ? err.message : String(e)} [E_INTERNAL]`;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')}; see fusediff --help)`);
    const args = parseCommandLine(rest, command.options, command.name);
    if (args.options.help) {
      process.stdout.write(helpText(command));
      return 0;
    }
    if (args.positionals.length > (command.maxPositionals ?? 0))
      throw new UsageError(`unexpected argument "${args.positionals[command.maxPositionals ?? 0]}" (see fusediff ${command.name} --help)`);
    return await command.run(args);
  } catch (e) {
    // Finish any progress line first, so the error starts a line of its own.
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stderr.write(`fusediff: ${errorLine(e).split('\n')[0]}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

// `fusediff info m | head -1`: a closed pipe is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`fusediff: ${String(e)} [E_INTERNAL]\n`);
    process.exitCode = 1;
  },
);
