/**
 * Sprite sheets: images of one size laid out row by row in `columns` columns, with `padding`
 * pixels around every cell (between cells and at the sheet's border), so cell i sits at
 *     x = padding + (i mod columns)·(width + padding),  y = padding + ⌊i / columns⌋·(height + padding)
 * — the offsets a game engine's sprite atlas needs, also returned as `cells`. With `scale` s,
 * every image is first enlarged s times by pixel repetition (nearest neighbour: pixel art
 * stays sharp), so width and height above are s times the image's.
 */
import { FusediffError } from '../errors.js';
import type { GeneratedImage } from '../pipeline/images.js';

export interface GridOptions {
  /** Cells per row (default: ⌈√n⌉, a near-square sheet). */
  columns?: number;
  /** Pixels around each cell (default 0). */
  padding?: number;
  /**
   * Padding colour, RGB or RGBA bytes (default: transparent [0, 0, 0, 0] for RGBA sheets,
   * black for RGB ones).
   */
  background?: readonly number[];
  /** Integer enlargement of every image by pixel repetition, 1-16 (default 1). */
  scale?: number;
}

export interface Grid {
  image: GeneratedImage;
  columns: number;
  rows: number;
  /** Where each input image sits, in input order. */
  cells: { x: number; y: number; width: number; height: number }[];
}

export function makeGrid(images: readonly GeneratedImage[], options: GridOptions = {}): Grid {
  if (!Array.isArray(images) || images.length === 0) throw new FusediffError('E_ARGUMENT', 'a grid needs at least one image');
  const { width: iw, height: ih, channels: c } = images[0];
  images.forEach((img, i) => {
    if (img.width !== iw || img.height !== ih || img.channels !== c)
      throw new FusediffError('E_SHAPE', `image ${i} is ${img.width}x${img.height}x${img.channels}, the first is ${iw}x${ih}x${c}: a grid needs images of one size`);
    if (img.data.length !== iw * ih * c) throw new FusediffError('E_SHAPE', `image ${i}: ${img.data.length} bytes do not make ${iw}x${ih}x${c}`);
  });
  const scale = options.scale ?? 1;
  if (!Number.isInteger(scale) || scale < 1 || scale > 16) throw new FusediffError('E_ARGUMENT', `scale must be an integer in [1, 16], got ${String(scale)}`);
  const w = iw * scale;
  const h = ih * scale;
  const n = images.length;
  const columns = options.columns ?? Math.ceil(Math.sqrt(n));
  const padding = options.padding ?? 0;
  if (!Number.isInteger(columns) || columns < 1) throw new FusediffError('E_ARGUMENT', `columns must be an integer >= 1, got ${String(columns)}`);
  if (!Number.isInteger(padding) || padding < 0 || padding > 4096) throw new FusediffError('E_ARGUMENT', `padding must be an integer in [0, 4096], got ${String(padding)}`);
  const cols = Math.min(columns, n);
  const rows = Math.ceil(n / cols);
  const W = padding + cols * (w + padding);
  const H = padding + rows * (h + padding);
  if (W * H * c > 2 ** 31 - 1) throw new FusediffError('E_RESOURCE', `a ${W}x${H} sheet is too large`);
  const bg = options.background ?? (c === 4 ? [0, 0, 0, 0] : [0, 0, 0]);
  if (bg.length < 3 || bg.some((v) => !Number.isInteger(v) || v < 0 || v > 255))
    throw new FusediffError('E_ARGUMENT', 'background must be 3 or 4 bytes (RGB or RGBA)');
  const data = new Uint8ClampedArray(W * H * c);
  if (bg.some((v) => v !== 0)) {
    const px = c === 4 ? [bg[0], bg[1], bg[2], bg[3] ?? 255] : [bg[0], bg[1], bg[2]];
    for (let p = 0; p < W * H; p++) data.set(px, p * c);
  }
  const cells = images.map((img, i) => {
    const x = padding + (i % cols) * (w + padding);
    const y = padding + Math.floor(i / cols) * (h + padding);
    if (scale === 1) {
      for (let r = 0; r < h; r++) data.set(img.data.subarray(r * w * c, (r + 1) * w * c), ((y + r) * W + x) * c);
    } else {
      const row = new Uint8ClampedArray(w * c);
      for (let r = 0; r < ih; r++) {
        for (let col = 0; col < iw; col++) {
          const px = img.data.subarray((r * iw + col) * c, (r * iw + col + 1) * c);
          for (let k = 0; k < scale; k++) row.set(px, (col * scale + k) * c);
        }
        for (let k = 0; k < scale; k++) data.set(row, ((y + r * scale + k) * W + x) * c);
      }
    }
    return { x, y, width: w, height: h };
  });
  return { image: { width: W, height: H, channels: c, data }, columns: cols, rows, cells };
}
