/**
 * PNG encoding/decoding (pngjs for pixels, our own text chunks) and sprite-sheet layout.
 */
import { inflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../lib/image/png.js';
import { decodePng, encodePng, FusediffError, makeGrid, readPngText, type GeneratedImage } from '../lib/index.js';
import { rng } from './helpers/random-model.js';

function randomImage(width: number, height: number, channels: 3 | 4, seed: number): GeneratedImage {
  const r = rng(seed);
  return { width, height, channels, data: Uint8ClampedArray.from({ length: width * height * channels }, () => Math.floor(r() * 256)) };
}

/** Every chunk of a PNG file: type, body, and whether its CRC is right. */
function chunks(bytes: Buffer): { type: string; body: Buffer; crcOk: boolean }[] {
  const out = [];
  for (let at = 8; at < bytes.length; ) {
    const n = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    const crcOk = bytes.readUInt32BE(at + 8 + n) === crc32(bytes.subarray(at + 4, at + 8 + n));
    out.push({ type, body: bytes.subarray(at + 8, at + 8 + n), crcOk });
    at += 12 + n;
  }
  return out;
}

describe('png', () => {
  it('crc32 matches the standard check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  for (const channels of [3, 4] as const)
    it(`round-trips ${channels === 3 ? 'RGB' : 'RGBA'} images exactly`, () => {
      const img = randomImage(13, 7, channels, channels);
      const back = decodePng(encodePng(img));
      expect(back.width).toBe(13);
      expect(back.height).toBe(7);
      expect(back.channels).toBe(channels);
      expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
    });

  it('writes text chunks before IDAT with correct CRCs, readable by us and by pngjs', () => {
    const img = randomImage(8, 8, 3, 1);
    const record = JSON.stringify({ seed: 42, sampler: 'ddim', steps: 10 });
    const bytes = encodePng(img, { text: { fusediff: record, Comment: 'café', Title: 'snow ☃' } });
    const list = chunks(bytes);
    expect(list.every((c) => c.crcOk)).toBe(true);
    const types = list.map((c) => c.type);
    expect(types[0]).toBe('IHDR');
    expect(types.indexOf('tEXt')).toBeLessThan(types.indexOf('IDAT'));
    expect(types.at(-1)).toBe('IEND');
    // Latin-1 text in tEXt, anything else in iTXt.
    expect(types.filter((t) => t === 'tEXt')).toHaveLength(2);
    expect(types.filter((t) => t === 'iTXt')).toHaveLength(1);
    expect(readPngText(bytes)).toEqual({ fusediff: record, Comment: 'café', Title: 'snow ☃' });
    // A strict third-party decoder (checks CRCs) still reads the pixels.
    const png = PNG.sync.read(bytes, { checkCRC: true } as never);
    expect(png.width).toBe(8);
    expect(Buffer.from(decodePng(bytes).data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('deflates long non-Latin-1 texts in iTXt', () => {
    const text = '☃'.repeat(2000);
    const bytes = encodePng(randomImage(2, 2, 4, 2), { text: { long: text } });
    const itxt = chunks(bytes).find((c) => c.type === 'iTXt')!;
    expect(itxt.body[5]).toBe(1); // compression flag
    expect(inflateSync(itxt.body.subarray(9)).toString('utf8')).toBe(text);
    expect(readPngText(bytes).long).toBe(text);
  });

  it('decodes other colour types and bit depths (grey, 16-bit, palette via pngjs)', () => {
    // 16-bit greyscale with alpha, written by pngjs itself.
    const png = new PNG({ width: 3, height: 2, colorType: 4, bitDepth: 16, inputHasAlpha: true });
    png.data = Buffer.alloc(3 * 2 * 4, 0);
    for (let p = 0; p < 6; p++) png.data.set([p * 40, p * 40, p * 40, 128], p * 4);
    const bytes = PNG.sync.write(png, { colorType: 4, bitDepth: 16, inputHasAlpha: true } as never);
    const img = decodePng(bytes);
    expect(img.channels).toBe(4);
    expect(Buffer.from(img.data).equals(PNG.sync.read(bytes).data)).toBe(true);
    expect(img.data[7]).toBe(128);
    const grey = PNG.sync.write(Object.assign(new PNG({ width: 2, height: 1 }), { data: Buffer.from([10, 10, 10, 255, 200, 200, 200, 255]) }), { colorType: 0 } as never);
    expect(decodePng(grey)).toMatchObject({ channels: 3, width: 2, height: 1 });
    expect(Array.from(decodePng(grey).data)).toEqual([10, 10, 10, 200, 200, 200]);
  });

  it('refuses non-PNG bytes, bad keywords and mis-sized data with typed errors', () => {
    expect(() => decodePng(Buffer.from('GIF89a....'))).toThrow(/E_FORMAT/);
    const bytes = encodePng(randomImage(4, 4, 3, 3));
    expect(() => decodePng(bytes.subarray(0, 40))).toThrow(FusediffError);
    expect(() => encodePng(randomImage(4, 4, 3, 3), { text: { '': 'x' } })).toThrow(/E_ARGUMENT/);
    expect(() => encodePng({ width: 4, height: 4, channels: 3, data: new Uint8ClampedArray(5) })).toThrow(/E_SHAPE/);
  });
});

describe('grid', () => {
  it('lays images out row by row with padding around every cell', () => {
    const imgs = [0, 1, 2, 3, 4].map((i) => ({ width: 3, height: 2, channels: 3 as const, data: new Uint8ClampedArray(3 * 2 * 3).fill(10 + i) }));
    const g = makeGrid(imgs, { columns: 2, padding: 1 });
    expect(g.columns).toBe(2);
    expect(g.rows).toBe(3);
    expect(g.image).toMatchObject({ width: 1 + 2 * (3 + 1), height: 1 + 3 * (2 + 1), channels: 3 });
    expect(g.cells[3]).toEqual({ x: 1 + 4, y: 1 + 3, width: 3, height: 2 });
    const px = (x: number, y: number) => g.image.data[(y * g.image.width + x) * 3];
    for (const [i, c] of g.cells.entries())
      for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) expect(px(c.x + x, c.y + y)).toBe(10 + i);
    expect(px(0, 0)).toBe(0); // padding
    expect(px(4, 1)).toBe(0); // between cells
    expect(px(5, 7)).toBe(0); // the empty sixth cell
  });

  it('pads RGBA sheets with transparent pixels and takes a background colour', () => {
    const img = { width: 1, height: 1, channels: 4 as const, data: new Uint8ClampedArray([1, 2, 3, 255]) };
    const g = makeGrid([img, img], { padding: 2 });
    expect(g.image.width).toBe(2 + 2 * 3);
    expect(Array.from(g.image.data.subarray(0, 4))).toEqual([0, 0, 0, 0]);
    const white = makeGrid([img], { padding: 1, background: [255, 255, 255] });
    expect(Array.from(white.image.data.subarray(0, 4))).toEqual([255, 255, 255, 255]);
    expect(() => makeGrid([img, { ...img, width: 2, data: new Uint8ClampedArray(8) }])).toThrow(/E_SHAPE/);
    expect(() => makeGrid([img], { columns: 0 })).toThrow(/E_ARGUMENT/);
  });

  it('scale enlarges every cell by pixel repetition; cells are in sheet pixels', () => {
    // A 2x1 RGB image: a red pixel, then a green one.
    const img = { width: 2, height: 1, channels: 3 as const, data: new Uint8ClampedArray([255, 0, 0, 0, 255, 0]) };
    const g = makeGrid([img, img], { columns: 2, padding: 1, scale: 3 });
    expect(g.image).toMatchObject({ width: 1 + 2 * (6 + 1), height: 1 + 3 + 1 });
    expect(g.cells[1]).toEqual({ x: 1 + 7, y: 1, width: 6, height: 3 });
    const px = (x: number, y: number) => Array.from(g.image.data.subarray((y * g.image.width + x) * 3, (y * g.image.width + x) * 3 + 3));
    for (const c of g.cells)
      for (let y = 0; y < 3; y++)
        for (let x = 0; x < 6; x++) expect(px(c.x + x, c.y + y), `${x},${y}`).toEqual(x < 3 ? [255, 0, 0] : [0, 255, 0]);
    expect(px(7, 2)).toEqual([0, 0, 0]); // padding between the cells
    expect(makeGrid([img], { scale: 1 }).image.data).toEqual(img.data);
    for (const scale of [0, 17, 1.5, Number.NaN]) expect(() => makeGrid([img], { scale })).toThrow(/E_ARGUMENT/);
  });
});
