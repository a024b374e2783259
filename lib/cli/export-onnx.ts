/** `fusediff export-onnx <model> <out.onnx>`: the model's UNet as a standard ONNX file. */
import path from 'node:path';
import { exportOnnx } from '../onnx/command.js';
import { UsageError, type Command, type ParsedArgs } from './args.js';
import { isPipelineFolder } from './model.js';

export const exportOnnxCli: Command = {
  name: 'export-onnx',
  summary: 'Write a model\'s UNet as an ONNX file (for onnxruntime and other runtimes).',
  usage: 'fusediff export-onnx MODEL_DIR OUT.onnx [options]',
  notes: 'MODEL_DIR is a UNet folder or a pipeline folder (its unet/ is exported).',
  options: {
    opset: { type: 'integer', help: 'ONNX opset, 15 to 21', default: 17 },
    json: { type: 'boolean', help: 'print the result as JSON' },
  },
  maxPositionals: 2,
  run,
};

async function run({ options: o, positionals }: ParsedArgs): Promise<number> {
  if (positionals.length !== 2) throw new UsageError('export-onnx needs MODEL_DIR and OUT.onnx (see fusediff export-onnx --help)');
  const [dir, out] = positionals.map((p) => path.resolve(p));
  const modelDir = isPipelineFolder(dir) ? path.join(dir, 'unet') : dir;
  const r = await exportOnnx(modelDir, out, { opset: o.opset as number });
  if (o.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else process.stdout.write(`wrote ${r.path} (${(r.bytes / 1e6).toFixed(1)} MB, opset ${r.opset}, ${r.nodes} nodes)\n`);
  return 0;
}
