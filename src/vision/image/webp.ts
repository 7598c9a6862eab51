// WebP: the header only. Neither llama.cpp (stb_image) nor this package decodes WebP pixels yet,
// so decodeImage refuses it by name; probeImage still reports its size (VP8, VP8L and VP8X).
import { ascii, ImageError, type ImageInfo } from './common.js';

export function webpHeader(b: Uint8Array, what: string): ImageInfo {
  if (b.length < 30) throw new ImageError(`${what}: file is truncated (${b.length} bytes)`);
  const chunk = ascii(b, 12, 4);
  const d = 20; // chunk payload
  if (chunk === 'VP8 ') {
    // frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height (2 bits of scale above)
    if (b[d + 3] !== 0x9d || b[d + 4] !== 0x01 || b[d + 5] !== 0x2a) throw new ImageError(`${what}: corrupt VP8 frame header`);
    return { format: 'webp', width: (b[d + 6]! | (b[d + 7]! << 8)) & 0x3fff, height: (b[d + 8]! | (b[d + 9]! << 8)) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (b[d] !== 0x2f) throw new ImageError(`${what}: corrupt VP8L header`);
    const bits = (b[d + 1]! | (b[d + 2]! << 8) | (b[d + 3]! << 16) | (b[d + 4]! << 24)) >>> 0;
    return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    const w = b[d + 4]! | (b[d + 5]! << 8) | (b[d + 6]! << 16);
    const h = b[d + 7]! | (b[d + 8]! << 8) | (b[d + 9]! << 16);
    return { format: 'webp', width: w + 1, height: h + 1 };
  }
  throw new ImageError(`${what}: unknown first chunk '${chunk}'`);
}
