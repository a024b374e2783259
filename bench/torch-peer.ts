/**
 * The PyTorch peer (bench/torch_peer.py) as a child process that times one forward per
 * request, so the bench can alternate fusediff and PyTorch forwards like it alternates
 * fusediff and onnxruntime-node. Optional: it needs Debian's python3-torch (a dev
 * dependency of the training recipe, never of the package); BENCH_TORCH=0 skips it and
 * BENCH_PYTHON names the interpreter (default /usr/bin/python3).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bench', 'torch_peer.py');

export interface TorchPeer {
  version: string;
  /** The peer's output for the input, NCHW float32. */
  output: Float32Array;
  /** Runs one forward; resolves to its seconds as timed inside the peer. */
  run(): Promise<number>;
  close(): void;
}

export interface TorchPeerOptions {
  modelDir: string;
  input: Float32Array;
  shape: number[];
  timestep: number;
  classLabel?: number;
  threads: number;
  /** Folder for the input / output exchange files. */
  scratchDir: string;
  log: (line: string) => void;
}

/** Starts the peer, or resolves to null (with the reason logged) where it cannot run. */
export async function startTorchPeer(o: TorchPeerOptions): Promise<TorchPeer | null> {
  if (process.env.BENCH_TORCH === '0') return null;
  const python = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
  const inputFile = path.join(o.scratchDir, `torch-input-b${o.shape[0]}.f32`);
  const outputFile = path.join(o.scratchDir, `torch-output-b${o.shape[0]}.f32`);
  writeFileSync(inputFile, Buffer.from(o.input.buffer, o.input.byteOffset, o.input.byteLength));
  const args = [SCRIPT, o.modelDir, inputFile, o.shape.join(','), String(o.timestep), String(o.classLabel ?? -1), outputFile];
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawn(python, args, {
      env: { ...process.env, OMP_NUM_THREADS: String(o.threads), OMP_WAIT_POLICY: 'PASSIVE' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (e) {
    o.log(`PyTorch peer not run: ${(e as Error).message}`);
    return null;
  }
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<(line: string | null) => void> = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  void closed.then(() => {
    for (const w of waiting.splice(0)) w(null);
  });
  child.on('error', () => undefined); // reported through 'close' and the missing "ready"
  const nextLine = () => new Promise<string | null>((resolve) => waiting.push(resolve));

  const ready = await nextLine();
  if (ready === null || !ready.startsWith('ready ')) {
    o.log(`PyTorch peer not run (${python} ${path.relative(process.cwd(), SCRIPT)}): ${stderr.trim().split('\n').pop() ?? 'no output'}`);
    child.kill();
    return null;
  }
  const raw = readFileSync(outputFile);
  const output = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4).slice();
  return {
    version: ready.slice('ready '.length),
    output,
    async run() {
      const reply = nextLine();
      child.stdin.write('run\n');
      const line = await reply;
      const seconds = line === null ? NaN : Number(line);
      if (!Number.isFinite(seconds)) throw new Error(`PyTorch peer failed: ${stderr.trim() || 'no reply'}`);
      return seconds;
    },
    close() {
      child.stdin.end();
    },
  };
}
