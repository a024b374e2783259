/**
 * PNG files in and out. Pixels are encoded and decoded by pngjs (pure JS, no native code, no
 * install script, reads every colour type, bit depth and interlacing the PNG spec allows);
 * text chunks, which pngjs neither writes nor reports, are handled here: written between
 * IHDR and the image data, read back from any tEXt, zTXt or iTXt chunk.
 */
import { deflateSync, inflateSync } from 'node:zlib';
import pngjs from 'pngjs';
import { FusediffError } from '../errors.js';
import type { GeneratedImage } from '../pipeline/images.js';

// pngjs is CommonJS: its default export carries PNG under both ESM and CJS builds.
const { PNG } = pngjs;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Signature, then IHDR: length (4), type (4), 13 data bytes, CRC (4). */
const AFTER_IHDR = 8 + 4 + 4 + 13 + 4;

export interface EncodePngOptions {
  /** Text chunks, keyword → text (keywords: 1–79 Latin-1 characters, as the spec requires). */
  text?: Record<string, string>;
}

/** An image (RGB or RGBA, 8-bit) as PNG bytes, with optional text chunks. */
export function encodePng(image: GeneratedImage, options: EncodePngOptions = {}): Buffer {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new FusediffError('E_ARGUMENT', `image size must be positive integers, got ${String(width)}x${String(height)}`);
  if (channels !== 3 && channels !== 4) throw new FusediffError('E_ARGUMENT', `image channels must be 3 or 4, got ${String(channels)}`);
  if (!data || data.length !== width * height * channels)
    throw new FusediffError('E_SHAPE', `${data?.length ?? 0} bytes do not make a ${width}x${height}x${channels} image`);
  const colorType = channels === 4 ? 6 : 2;
  const png = new PNG({ width, height });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  // inputColorType tells pngjs the buffer is packed RGB or RGBA, so no copy to RGBA is needed.
  const bytes = PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: channels === 4 });
  const chunks = Object.entries(options.text ?? {}).map(([k, v]) => textChunk(k, v));
  if (chunks.length === 0) return bytes;
  // Text before IDAT: readers that stop at the image data still see it.
  return Buffer.concat([bytes.subarray(0, AFTER_IHDR), ...chunks, bytes.subarray(AFTER_IHDR)]);
}

/** PNG bytes as an 8-bit image: RGBA when the file has alpha (an alpha channel or tRNS), else RGB. */
export function decodePng(bytes: Uint8Array): GeneratedImage {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < SIGNATURE.length || !buf.subarray(0, 8).equals(SIGNATURE)) throw new FusediffError('E_FORMAT', 'not a PNG file (bad signature)');
  let png: { width: number; height: number; data: Buffer; alpha?: boolean };
  try {
    png = PNG.sync.read(buf) as typeof png;
  } catch (e) {
    throw new FusediffError('E_FORMAT', `invalid PNG: ${(e as Error).message}`);
  }
  const { width, height } = png;
  const rgba = png.data;
  if (png.alpha) return { width, height, channels: 4, data: new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, width * height * 4) };
  const rgb = new Uint8ClampedArray(width * height * 3);
  for (let p = 0, q = 0; p < rgb.length; p += 3, q += 4) {
    rgb[p] = rgba[q];
    rgb[p + 1] = rgba[q + 1];
    rgb[p + 2] = rgba[q + 2];
  }
  return { width, height, channels: 3, data: rgb };
}

/** The text chunks of PNG bytes (tEXt, zTXt, iTXt), keyword → text; the first of a keyword wins. */
export function readPngText(bytes: Uint8Array): Record<string, string> {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new FusediffError('E_FORMAT', 'not a PNG file (bad signature)');
  const out: Record<string, string> = {};
  for (let at = 8; at + 12 <= buf.length; ) {
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > buf.length) throw new FusediffError('E_FORMAT', `PNG chunk ${type} runs past the end of the file`);
    const body = buf.subarray(at + 8, at + 8 + length);
    if (type === 'tEXt' || type === 'zTXt' || type === 'iTXt') {
      const [key, value] = parseText(type, body);
      if (!(key in out)) out[key] = value;
    }
    if (type === 'IEND') break;
    at += 12 + length;
  }
  return out;
}

function parseText(type: string, body: Buffer): [string, string] {
  const nul = body.indexOf(0);
  if (nul < 1) throw new FusediffError('E_FORMAT', `PNG ${type} chunk without a keyword`);
  const key = body.toString('latin1', 0, nul);
  try {
    if (type === 'tEXt') return [key, body.toString('latin1', nul + 1)];
    if (type === 'zTXt') return [key, inflateSync(body.subarray(nul + 2)).toString('latin1')];
    // iTXt: keyword\0 compressed-flag method language\0 translated-keyword\0 text (UTF-8).
    const compressed = body[nul + 1] === 1;
    const langEnd = body.indexOf(0, nul + 3);
    const transEnd = body.indexOf(0, langEnd + 1);
    if (langEnd < 0 || transEnd < 0) throw new Error('truncated');
    const text = body.subarray(transEnd + 1);
    return [key, (compressed ? inflateSync(text) : text).toString('utf8')];
  } catch (e) {
    throw new FusediffError('E_FORMAT', `invalid PNG ${type} chunk "${key}": ${(e as Error).message}`);
  }
}

/** tEXt when the text is Latin-1 (what the chunk's spec allows), else uncompressed iTXt (UTF-8). */
function textChunk(keyword: string, text: string): Buffer {
  if (typeof keyword !== 'string' || !/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword))
    throw new FusediffError('E_ARGUMENT', `PNG text keyword must be 1-79 printable Latin-1 characters without leading, trailing or double spaces, got ${JSON.stringify(keyword)}`);
  if (typeof text !== 'string') throw new FusediffError('E_ARGUMENT', `PNG text for "${keyword}" must be a string`);
  const key = Buffer.from(keyword, 'latin1');
  // tEXt forbids NUL; Latin-1 otherwise (code points above 0xff need iTXt).
  if (/^[^\0\u0100-\uffff]*$/.test(text)) return chunk('tEXt', Buffer.concat([key, Buffer.from([0]), Buffer.from(text, 'latin1')]));
  const utf8 = Buffer.from(text, 'utf8');
  // Long texts are deflated, as iTXt permits; short ones stay readable in a hex dump.
  const compress = utf8.length > 1024;
  const payload = compress ? deflateSync(utf8) : utf8;
  return chunk('iTXt', Buffer.concat([key, Buffer.from([0, compress ? 1 : 0, 0, 0, 0]), payload]));
}

function chunk(type: string, body: Buffer): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  body.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

let table: Uint32Array | undefined;

/** CRC-32 of the chunk type and data (ISO 3309, the PNG spec's annex D). zlib.crc32 needs Node >= 20.15. */
export function crc32(bytes: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
