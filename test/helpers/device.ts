/**
 * The device the fixture suites run on: the CPU (npm test), or the CUDA backend when
 * `npm run test:cuda` sets FUSEDIFF_TEST_DEVICE=cuda and FUSEDIFF_TEST_PRECISION (fp32, tf32,
 * bf16). With reduced-precision math the tolerance grows with the reference's magnitude:
 * TF32 multiplies 10-bit-mantissa inputs (relative error ~2^-11 per product, float32
 * accumulation; a forward typically lands near 1e-3 of the output scale, and end-to-end
 * samplings carry it through every step: 1e-2 allowed), BF16 7-bit ones (5e-2).
 */
import type { LoadUNetOptions } from '../../lib/index.js';

export const TEST_DEVICE = process.env.FUSEDIFF_TEST_DEVICE ?? 'cpu';
export const TEST_PRECISION = (process.env.FUSEDIFF_TEST_PRECISION ?? 'fp32') as 'fp32' | 'tf32' | 'bf16';

/** loadUNet options for the device under test. */
export function deviceOptions(): LoadUNetOptions {
  return TEST_DEVICE === 'cpu' ? {} : { device: TEST_DEVICE as 'cuda', precision: TEST_PRECISION };
}

/** Relative error allowed on top of a fixture's float32 tolerance, by precision. */
export const RELATIVE_TOLERANCE = { fp32: 0, tf32: 1e-2, bf16: 5e-2 } as const;

/** The tolerance for the device under test, given the fixture's and the reference's largest |value|. */
export function deviceTolerance(tolerance: number, referenceMaxAbs: number): number {
  if (TEST_DEVICE === 'cpu') return tolerance;
  return Math.max(tolerance, RELATIVE_TOLERANCE[TEST_PRECISION] * Math.max(1, referenceMaxAbs));
}
