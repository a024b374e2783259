// One UNet2DModel forward on a small diffusers model from the test fixtures, compared with
// the output diffusers produced for the same input.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadUNet, Tensor } from '../dist/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const model = path.join(here, '../test/fixtures/diffusers/models/unet_basic');

function readF32(file, name) {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const info = JSON.parse(buf.subarray(8, 8 + n).toString())[name];
  const [b, e] = info.data_offsets;
  return { shape: info.shape, data: new Float32Array(new Uint8Array(buf.subarray(8 + n + b, 8 + n + e)).buffer) };
}

const unet = await loadUNet(model);
const io = path.join(model, 'io.safetensors');
const sample = readF32(io, 'set0.sample');
const expected = readF32(io, 'set0.out_f64_as_f32');
const start = performance.now();
const eps = await unet.forward(Tensor.fromFloat32(sample.data, sample.shape), 999);
const ms = performance.now() - start;
const out = await eps.toFloat32Array();
let err = 0;
for (let i = 0; i < out.length; i++) err = Math.max(err, Math.abs(out[i] - expected.data[i]));
console.log(`unet_basic: ${unet.info.parameterCount} parameters, kernels ${unet.info.kernels}`);
console.log(`forward [${eps.shape.join(', ')}] in ${ms.toFixed(1)} ms; max |fusediff - diffusers| = ${err.toExponential(2)}`);
