/**
 * The function behind `fusediff export-onnx <model> <out.onnx> [--opset N]`: argument
 * parsing, loading, exporting and a one-line report, returning the process exit code, so the
 * future CLI entry point only has to dispatch to it.
 */
import { FusediffError } from '../errors.js';
import { loadUNet } from '../unet/load.js';
import type { ExportOnnxOptions, ExportOnnxResult } from './export.js';

export const EXPORT_ONNX_USAGE = 'usage: fusediff export-onnx <model folder> <out.onnx> [--opset N]';

/** Loads the diffusers UNet folder `modelDir` and writes it to `outFile` as ONNX. */
export async function exportOnnx(modelDir: string, outFile: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const unet = await loadUNet(modelDir);
  try {
    return await unet.exportOnnx(outFile, options);
  } finally {
    unet.dispose();
  }
}

export interface CommandOutput {
  out(line: string): void;
  err(line: string): void;
}

const consoleOutput: CommandOutput = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs the command; resolves to the exit code (0 done, 1 failed, 2 bad usage). Never throws. */
export async function exportOnnxCommand(args: readonly string[], output: CommandOutput = consoleOutput): Promise<number> {
  const positional: string[] = [];
  const options: ExportOnnxOptions = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-h' || a === '--help') {
      output.out(EXPORT_ONNX_USAGE);
      return 0;
    }
    const opset = a.startsWith('--opset=') ? a.slice('--opset='.length) : a === '--opset' ? args[++i] : undefined;
    if (a.startsWith('--opset')) {
      if (opset === undefined || !/^\d+$/.test(opset)) {
        output.err(`--opset needs an integer\n${EXPORT_ONNX_USAGE}`);
        return 2;
      }
      options.opset = Number(opset);
    } else if (a.startsWith('-')) {
      output.err(`unknown option ${a}\n${EXPORT_ONNX_USAGE}`);
      return 2;
    } else positional.push(a);
  }
  if (positional.length !== 2) {
    output.err(EXPORT_ONNX_USAGE);
    return 2;
  }
  try {
    const r = await exportOnnx(positional[0], positional[1], options);
    output.out(`wrote ${r.path} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${r.opset}, ${r.nodes} nodes; inputs ${r.inputs.join(', ')}; output ${r.output})`);
    return 0;
  } catch (e) {
    output.err(e instanceof FusediffError ? e.message : `unexpected error: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}
