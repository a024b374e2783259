/**
 * Writes an encoded message's chunks to a file: small chunks are coalesced into 1 MiB
 * writes (an ONNX graph is thousands of tiny node records between large weights), and the
 * data goes to a temporary file in the same folder that is renamed over the target only once
 * complete, so a failed export never leaves a truncated model where a good one may have been.
 * Asynchronous: the event loop keeps running while a 1 GB model is written.
 */
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { FusediffError } from '../errors.js';

const COALESCE_BYTES = 1 << 20;

export async function writeChunks(file: string, chunks: readonly Uint8Array[]): Promise<number> {
  const target = path.resolve(file);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'w');
  } catch (cause) {
    throw new FusediffError('E_IO', `cannot create ${target}: ${(cause as Error).message}`);
  }
  let written = 0;
  try {
    const pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingBytes);
      await writeAll(handle!, data);
      written += pendingBytes;
      pending.length = 0;
      pendingBytes = 0;
    };
    for (const c of chunks) {
      if (c.byteLength >= COALESCE_BYTES) {
        await flush();
        await writeAll(handle!, c);
        written += c.byteLength;
        continue;
      }
      pending.push(c);
      pendingBytes += c.byteLength;
      if (pendingBytes >= COALESCE_BYTES) await flush();
    }
    await flush();
    await handle!.close();
    handle = undefined;
    await rename(temp, target);
  } catch (cause) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    if (cause instanceof FusediffError) throw cause;
    throw new FusediffError('E_IO', `writing ${target} failed: ${(cause as Error).message}`);
  }
  return written;
}

async function writeAll(handle: FileHandle, data: Uint8Array): Promise<void> {
  let done = 0;
  while (done < data.byteLength) {
    const { bytesWritten } = await handle.write(data, done, data.byteLength - done);
    done += bytesWritten;
  }
}
