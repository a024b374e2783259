/**
 * Command-line options: Node's own util.parseArgs does the tokenising (--name value,
 * --name=value, -n value, `--` ends options), this file adds typed values, usage errors
 * and the --help text, so the CLI needs no framework dependency.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export type OptionType = 'string' | 'number' | 'integer' | 'boolean' | 'integers' | 'labels';

export interface OptionSpec {
  type: OptionType;
  short?: string;
  /** Placeholder in the help text, e.g. DIR. */
  value?: string;
  help: string;
  default?: string | number | boolean;
}

export type OptionSpecs = Record<string, OptionSpec>;

export type OptionValue = string | number | boolean | number[] | (number | string)[] | undefined;

/** A mistake in the command line: exit status 2 and a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  usage: string;
  /** Extra paragraphs after the options. */
  notes?: string;
  options: OptionSpecs;
  /** How many positional arguments it takes (default 0). */
  maxPositionals?: number;
  run(args: ParsedArgs): Promise<number>;
}

export interface ParsedArgs {
  options: Record<string, OptionValue>;
  positionals: string[];
}

/** Every command also takes these. */
export const COMMON: OptionSpecs = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress output' },
  json: { type: 'boolean', help: 'print the result as JSON on stdout' },
};

export function parseCommandLine(argv: readonly string[], specs: OptionSpecs, command: string): ParsedArgs {
  const all = { ...specs, ...COMMON };
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(
        Object.entries(all).map(([name, s]) => [name, { type: s.type === 'boolean' ? 'boolean' : 'string', ...(s.short ? { short: s.short } : {}) }]),
      ) as NonNullable<ParseArgsConfig['options']>,
    });
  } catch (e) {
    // util.parseArgs messages are already one clear sentence; add where to look.
    // util.parseArgs explains `--` at length after its first sentence; one line is enough here.
    throw new UsageError(`${(e as Error).message.split('\n')[0].split('. To specify')[0].replace(/\.$/, '')} (see fusediff ${command} --help)`);
  }
  const options: Record<string, OptionValue> = {};
  for (const [name, spec] of Object.entries(all)) {
    const raw = (parsed.values as Record<string, string | boolean | undefined>)[name];
    const value = raw === undefined ? spec.default : raw;
    options[name] = value === undefined || typeof value === 'boolean' ? value : convert(name, spec.type, String(value));
  }
  return { options, positionals: parsed.positionals };
}

function convert(name: string, type: OptionType, raw: string): OptionValue {
  const number = (text: string): number => {
    const v = Number(text);
    if (text.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got "${text}"`);
    if (type !== 'number' && !Number.isInteger(v)) throw new UsageError(`--${name} expects an integer, got "${text}"`);
    return v;
  };
  if (type === 'number' || type === 'integer') return number(raw);
  // Comma-separated integer lists: --seeds 1,2,3.
  if (type === 'integers') return raw.split(',').map((s) => number(s.trim()));
  // Comma-separated class ids or names: --class wall,floor,3.
  if (type === 'labels')
    return raw.split(',').map((s) => {
      const t = s.trim();
      if (t === '') throw new UsageError(`--${name} has an empty item in "${raw}"`);
      return /^[0-9]+$/.test(t) ? Number(t) : t;
    });
  return raw;
}

export function helpText(cmd: Command): string {
  const all = { ...cmd.options, ...COMMON };
  const left = (name: string, s: OptionSpec) =>
    `${s.short ? `-${s.short}, ` : '    '}--${name}${s.type === 'boolean' ? '' : ` ${s.value ?? (s.type === 'string' ? 'VALUE' : s.type === 'integers' ? 'N[,N...]' : s.type === 'labels' ? 'C[,C...]' : 'N')}`}`;
  const width = Math.max(...Object.entries(all).map(([n, s]) => left(n, s).length));
  const lines = Object.entries(all).map(([n, s]) => `  ${left(n, s).padEnd(width)}  ${s.help}${s.default !== undefined ? ` (default: ${String(s.default)})` : ''}`);
  return [`Usage: ${cmd.usage}`, '', cmd.summary, '', 'Options:', ...lines, ...(cmd.notes ? ['', cmd.notes] : []), ''].join('\n');
}
