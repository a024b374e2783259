/**
 * JSON as Python writes it: diffusers saves configs with Python's json module, which emits
 * the non-standard literals NaN, Infinity and -Infinity (DPM-Solver configs contain
 * `"lambda_min_clipped": -Infinity`). JSON.parse rejects those, so they are rewritten to
 * tagged strings outside of string literals and turned back into numbers by a reviver.
 */
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
