// WebP: the size from the header of every kind (VP8, VP8L, VP8X), pixels of lossless WebP
// (webp_lossless.ts); lossy WebP goes to libwebp (webp_lossy.ts, async). llama.cpp's stb_image
// reads no WebP, so libwebp's dwebp is the reference; animated WebP is refused by name.
import type { RgbImage } from '../types.js';
import { ascii, ImageError, type ImageInfo, u16le, u32le } from './common.js';
import { decodeVp8l } from './webp_lossless.js';

export function webpHeader(b: Uint8Array, what: string): ImageInfo {
  if (b.length < 30) throw new ImageError(`${what}: file is truncated (${b.length} bytes)`);
  const chunk = ascii(b, 12, 4);
  const d = 20; // chunk payload
  if (chunk === 'VP8 ') {
    // frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height (2 bits of scale above)
    if (b[d + 3] !== 0x9d || b[d + 4] !== 0x01 || b[d + 5] !== 0x2a) throw new ImageError(`${what}: corrupt VP8 frame header`);
    return { format: 'webp', width: u16le(b, d + 6) & 0x3fff, height: u16le(b, d + 8) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (b[d] !== 0x2f) throw new ImageError(`${what}: corrupt VP8L header`);
    const bits = u32le(b, d + 1);
    return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    // 24-bit fields: the 32 bits from the byte before, that byte shifted out
    const w = u32le(b, d + 3) >>> 8;
    const h = u32le(b, d + 6) >>> 8;
    return { format: 'webp', width: w + 1, height: h + 1 };
  }
  throw new ImageError(`${what}: unknown first chunk '${chunk}'`);
}

/**
 * The lossless bitstream (a 'VP8L' chunk, alone or inside a VP8X container) or 'lossy' (a 'VP8 '
 * chunk, with or without ALPH), or an ImageError naming what this package does not decode
 * (animation) or what is missing.
 */
export function webpData(b: Uint8Array, what: string): Uint8Array | 'lossy' {
  const riffEnd = Math.min(b.length, 8 + u32le(b, 4));
  for (let pos = 12; pos + 8 <= riffEnd; ) {
    const type = ascii(b, pos, 4);
    const size = u32le(b, pos + 4);
    if (size > b.length - pos - 8) throw new ImageError(`${what}: file is truncated (chunk '${type}' says ${size} bytes, ${b.length - pos - 8} left)`);
    const data = b.subarray(pos + 8, pos + 8 + size);
    if (type === 'VP8X' && size >= 1 && data[0]! & 0x02) throw new ImageError(`${what}: animated WebP is not supported`);
    if (type === 'VP8 ') return 'lossy';
    if (type === 'VP8L') return data;
    pos += 8 + size + (size & 1);
  }
  throw new ImageError(`${what}: no image data (VP8 or VP8L chunk)`);
}

/** Lossless WebP to RGB, alpha dropped; lossy WebP is an ImageError pointing to decodeImageAsync. */
export function decodeWebp(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const canvas = webpHeader(b, what);
  const data = webpData(b, what);
  if (data === 'lossy') throw new ImageError(`${what}: lossy WebP is decoded by decodeImageAsync (libwebp in WebAssembly, loaded on first use), not by the synchronous decodeImage`);
  const { width, height, rgb } = decodeVp8l(data, what, maxPixels);
  if (width !== canvas.width || height !== canvas.height) throw new ImageError(`${what}: the VP8X header says ${canvas.width}x${canvas.height}, the image data ${width}x${height}`);
  return { width, height, data: rgb };
}
