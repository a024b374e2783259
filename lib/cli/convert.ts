/** `fusediff convert <dir>`: a PyTorch .bin checkpoint (read without executing anything) as safetensors. */
import path from 'node:path';
import { convertCheckpoint } from '../checkpoint/convert.js';
import { UsageError, type Command, type ParsedArgs } from './args.js';

export const convert: Command = {
  name: 'convert',
  summary: 'Write a model folder\'s PyTorch .bin weights as diffusion_pytorch_model.safetensors.',
  usage: 'fusediff convert MODEL_DIR [options]',
  notes: 'The .bin pickle is parsed as data: only what a state dict of tensors needs is accepted (else E_UNSAFE).',
  options: {
    variant: { type: 'string', value: 'NAME', help: 'convert the NAME variant, e.g. fp16' },
    overwrite: { type: 'boolean', help: 'replace an existing safetensors file' },
  },
  maxPositionals: 1,
  run,
};

async function run({ options: o, positionals }: ParsedArgs): Promise<number> {
  if (positionals.length !== 1) throw new UsageError('convert needs MODEL_DIR (see fusediff convert --help)');
  const r = await convertCheckpoint(path.resolve(positionals[0]), {
    variant: o.variant as string | undefined,
    overwrite: o.overwrite === true,
  });
  process.stdout.write(`wrote ${r.output}: ${r.tensors} tensors, ${r.bytes} bytes, from ${r.sources.join(', ')}\n`);
  return 0;
}
