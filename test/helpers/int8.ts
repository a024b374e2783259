/** What the int8 tests import, in one place. */
export {
  CMStochasticIterativeScheduler,
  DDIMScheduler,
  Generator,
  initialNoise,
  loadUNet,
  quantizeUNet,
  sampleLoop,
  Tensor,
  type UNet,
} from '../../lib/index.js';
import { promises as fs } from 'node:fs';

export async function readJsonFileForTests(file: string): Promise<unknown> {
  return JSON.parse(await fs.readFile(file, 'utf8'));
}
