/**
 * Every failure fusediff reports is a FusediffError with a stable `code`; the message says
 * what was wrong and where. Native code creates these too (the addon receives this class at
 * load), so `instanceof FusediffError` holds for every error the library throws or rejects.
 */
export type FusediffErrorCode =
  | 'E_FORMAT' // malformed file contents (safetensors, JSON, zip, pickle)
  | 'E_CONFIG' // a config value of the wrong type or out of range
  | 'E_UNSUPPORTED' // a valid config value or dtype fusediff does not implement
  | 'E_SHAPE' // a tensor shape that does not fit
  | 'E_IO' // the file system refused (missing file, permissions)
  | 'E_RESOURCE' // a request above the configured limits, or out of memory
  | 'E_ARGUMENT' // a bad argument to an API call
  | 'E_DISPOSED' // use of an object after dispose()
  | 'E_BACKEND_UNAVAILABLE' // a device or kernel path that is not available here
  | 'E_ABORTED' // the operation was cancelled through its AbortSignal
  | 'E_UNSAFE' // a file that asks for code to run (a pickle global) or for a path outside the model folder
  | 'E_INTERNAL'; // a bug in fusediff: please report it

export class FusediffError extends Error {
  readonly code: FusediffErrorCode;

  constructor(code: FusediffErrorCode, message: string) {
    super(`${message} [${code}]`);
    this.name = 'FusediffError';
    this.code = code;
  }
}

export function fail(code: FusediffErrorCode, message: string): never {
  throw new FusediffError(code, message);
}
