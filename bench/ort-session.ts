/**
 * onnxruntime-node sessions configured for a fair comparison on a small shared machine:
 * CPU execution provider, the same number of compute threads as fusediff (intra-op), one
 * inter-op thread, full graph optimizations, and thread spinning OFF. ORT's default is to
 * spin idle pool threads waiting for work; with two cores and fusediff's pool in the same
 * process, spinning threads steal the cores the other runtime is measured on.
 */
import * as ort from 'onnxruntime-node';

export async function createSession(file: string, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    extra: {
      'session.intra_op.allow_spinning': '0',
      'session.inter_op.allow_spinning': '0',
    },
  });
}

export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common ?? 'unknown';
}

export { ort };
