/**
 * JSON as Python writes it: diffusers saves configs with Python's json module, which emits
 * the non-standard literals NaN, Infinity and -Infinity (DPM-Solver configs contain
 * `"lambda_min_clipped": -Infinity`). JSON.parse rejects those, so they are rewritten to
 * tagged strings outside of string literals and turned back into numbers by a reviver.
 */
import { promises as fs } from 'node:fs';
import { FusediffError } from './errors.js';

const TAG = '\u0000fusediff-nonfinite:';
const LITERALS: Record<string, number> = { NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity };

export function parsePythonJson(text: string, where: string): unknown {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '"') {
      // Copy a string literal verbatim, honouring escapes.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    const match = /^(-Infinity|Infinity|NaN)/.exec(text.slice(i, i + 9));
    if (match) {
      out += JSON.stringify(TAG + match[1]);
      i += match[1].length;
      continue;
    }
    out += ch;
    i += 1;
  }
  try {
    return JSON.parse(out, (_key, value: unknown) =>
      typeof value === 'string' && value.startsWith(TAG) ? LITERALS[value.slice(TAG.length)] : value,
    );
  } catch (cause) {
    throw new FusediffError('E_FORMAT', `${where} is not valid JSON: ${(cause as Error).message}`);
  }
}

/** Config files are small; anything bigger is refused before it is read. */
export const MAX_CONFIG_BYTES = 1 << 20;

/** A JSON file as Python writes it, refused (E_RESOURCE) above `maxBytes`; E_IO when unreadable. */
export async function readJsonFile(file: string, maxBytes = MAX_CONFIG_BYTES): Promise<unknown> {
  let text: string;
  try {
    const stat = await fs.stat(file);
    if (stat.size > maxBytes)
      throw new FusediffError('E_RESOURCE', `${file} is ${stat.size} bytes; such files are limited to ${maxBytes}`);
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if (e instanceof FusediffError) throw e;
    throw new FusediffError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  return parsePythonJson(text, file);
}
