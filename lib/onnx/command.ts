/** Export without keeping the model: the function behind `fusediff export-onnx`. */
import { loadUNet } from '../unet/load.js';
import type { ExportOnnxOptions, ExportOnnxResult } from './export.js';

/** Loads the diffusers UNet folder `modelDir` and writes it to `outFile` as ONNX. */
export async function exportOnnx(modelDir: string, outFile: string, options: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const unet = await loadUNet(modelDir);
  try {
    return await unet.exportOnnx(outFile, options);
  } finally {
    unet.dispose();
  }
}
