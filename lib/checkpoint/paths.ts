/**
 * Keeps loading inside the model folder. A checkpoint comes from the internet: the file
 * names it gives (a sharded checkpoint's weight_map) and the files it ships (symlinks
 * included) must not make fusediff read anything outside the folder it was given.
 *
 * Names read from files must be plain relative paths: no absolute paths, no `..`, no empty
 * or `.` segments, no backslashes or NUL. Every file the loader opens must, once symlinks are
 * resolved, lie inside the model folder, with one exception: the Hugging Face cache, where
 * `snapshots/<revision>/<file>` is a symlink to `../../blobs/<hash>` of the same repository.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { FusediffError } from '../errors.js';

export async function isFile(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isFile();
  } catch {
    return false;
  }
}

/** `name`, a path read from `source`, joined to `folder`; E_UNSAFE unless it is a plain relative path. */
export function joinInside(folder: string, name: unknown, source: string): string {
  if (typeof name !== 'string' || name.length === 0)
    throw new FusediffError('E_CONFIG', `${source}: file names must be non-empty strings, got ${JSON.stringify(name)}`);
  const segments = name.split('/');
  const plain =
    !name.includes('\0') &&
    !name.includes('\\') &&
    !path.posix.isAbsolute(name) &&
    !path.win32.isAbsolute(name) &&
    segments.every((s) => s !== '' && s !== '.' && s !== '..');
  if (!plain)
    throw new FusediffError(
      'E_UNSAFE',
      `${source} names the file ${JSON.stringify(name)}, which is not a plain path inside ${folder}; fusediff reads nothing outside the model folder`,
    );
  return path.join(folder, ...segments);
}

function within(folder: string, file: string): boolean {
  const relative = path.relative(folder, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/** The blobs folder of the Hugging Face cache repository whose snapshot holds `realFolder`, if any. */
function huggingFaceBlobs(realFolder: string): string | null {
  const parts = realFolder.split(path.sep);
  const snapshots = parts.lastIndexOf('snapshots');
  if (snapshots < 1 || snapshots + 1 >= parts.length) return null;
  return [...parts.slice(0, snapshots), 'blobs'].join(path.sep);
}

/**
 * Checks that `file` exists (E_IO otherwise) and, symlinks resolved, lies inside `root` or
 * in the blobs of root's Hugging Face cache repository (E_UNSAFE otherwise).
 */
export async function assertInside(root: string, file: string): Promise<void> {
  let realRoot: string;
  let realFile: string;
  try {
    realRoot = await fs.realpath(root);
    realFile = await fs.realpath(file);
  } catch (e) {
    throw new FusediffError('E_IO', `cannot open ${file}: ${(e as Error).message}`);
  }
  if (within(realRoot, realFile)) return;
  const blobs = huggingFaceBlobs(realRoot);
  if (blobs !== null && path.dirname(realFile) === blobs) return;
  throw new FusediffError(
    'E_UNSAFE',
    `${file} resolves to ${realFile}, outside the model folder ${root}; fusediff reads nothing outside the model folder`,
  );
}
