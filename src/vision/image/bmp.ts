// BMP to RGB, as llama.cpp's stb_image 2.30 reads it: 1/4/8-bit palettes, 16/32-bit with default
// or BI_BITFIELDS masks (channels widened the way stb_image does), 24-bit, bottom-up or top-down,
// headers of 12, 40, 56, 108 or 124 bytes. RLE and embedded JPEG/PNG are refused, as there.
import type { RgbImage } from '../types.js';
import { checkSize, ImageError, type ImageInfo, u16le as u16, u32le as u32 } from './common.js';

interface Header extends ImageInfo {
  topDown: boolean;
  hsz: number;
  offset: number;
  bpp: number;
  compress: number;
  masks: [number, number, number, number]; // r, g, b, a
}

export function bmpHeader(b: Uint8Array, what: string): Header {
  if (b.length < 26) throw new ImageError(`${what}: file is truncated (${b.length} bytes)`);
  const offset = u32(b, 10);
  const hsz = u32(b, 14);
  if (![12, 40, 56, 108, 124].includes(hsz)) throw new ImageError(`${what}: unknown header size ${hsz}`);
  if (b.length < 14 + hsz) throw new ImageError(`${what}: file is truncated (header)`);
  const width = hsz === 12 ? u16(b, 18) : u32(b, 18) | 0;
  const h = hsz === 12 ? u16(b, 20) : u32(b, 22) | 0;
  const at = hsz === 12 ? 22 : 26;
  if (u16(b, at) !== 1) throw new ImageError(`${what}: ${u16(b, at)} planes, expected 1`);
  const bpp = u16(b, at + 2);
  const compress = hsz === 12 ? 0 : u32(b, 30);
  if (compress === 1 || compress === 2) throw new ImageError(`${what}: RLE-compressed BMP is not supported`);
  if (compress >= 4) throw new ImageError(`${what}: BMP with compression ${compress} (embedded JPEG/PNG) is not supported`);
  if (compress === 3 && bpp !== 16 && bpp !== 32) throw new ImageError(`${what}: bit fields need 16 or 32 bits a pixel, not ${bpp}`);
  let masks: [number, number, number, number] = [0, 0, 0, 0];
  const defaults = (): [number, number, number, number] => (bpp === 16 ? [31 << 10, 31 << 5, 31, 0] : bpp === 32 ? [0xff0000, 0xff00, 0xff, 0xff000000] : [0, 0, 0, 0]);
  if (hsz === 40 || hsz === 56) {
    if (bpp === 16 || bpp === 32) {
      if (compress === 0) masks = defaults();
      else {
        masks = [u32(b, 54), u32(b, 58), u32(b, 62), 0];
        if (masks[0] === masks[1] && masks[1] === masks[2]) throw new ImageError(`${what}: bad colour masks`);
      }
    }
  } else if (hsz >= 108) {
    masks = [u32(b, 54), u32(b, 58), u32(b, 62), u32(b, 66)];
    if (compress !== 3) masks = defaults();
  }
  return { format: 'bmp', width, height: Math.abs(h), topDown: h < 0, hsz, offset, bpp, compress, masks };
}

function highBit(z: number): number {
  return z === 0 ? -1 : 31 - Math.clz32(z);
}

function bitCount(a: number): number {
  let n = 0;
  for (; a; a >>>= 1) n += a & 1;
  return n;
}

const MUL = [0, 0xff, 0x55, 0x49, 0x11, 0x21, 0x41, 0x81, 0x01];
const SHIFT = [0, 0, 0, 1, 0, 2, 4, 6, 0];

/** A masked channel widened to 8 bits (stb_image's stbi__shiftsigned) */
function widen(v: number, shift: number, bits: number): number {
  v = shift < 0 ? v << -shift : v >>> shift;
  v >>>= 8 - bits;
  return ((v * MUL[bits]!) >>> SHIFT[bits]!) & 255;
}

export function decodeBmp(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const h = bmpHeader(b, what);
  const { width: w, height: ht, bpp } = h;
  checkSize(w, ht, maxPixels, what);
  const out = new Uint8Array(w * ht * 3);
  const headerEnd = 14 + h.hsz + (h.compress === 3 && h.hsz <= 56 ? 12 : 0);
  const rowBytes = bpp < 8 ? Math.ceil((w * bpp) / 8) : w * (bpp >> 3);
  const stride = (rowBytes + 3) & ~3;
  if (h.offset < headerEnd) throw new ImageError(`${what}: pixel data offset ${h.offset} is inside the header`);
  if (h.offset + stride * (ht - 1) + rowBytes > b.length) throw new ImageError(`${what}: file is truncated (pixel data)`);
  const row = (y: number) => h.offset + (h.topDown ? y : ht - 1 - y) * stride;
  if (bpp === 1 || bpp === 4 || bpp === 8) {
    const entry = h.hsz === 12 ? 3 : 4;
    // stb_image's palette size: for the 12-byte header it subtracts 24, not 12, from the offset
    const n = Math.floor((h.offset - 14 - (h.hsz === 12 ? 24 : h.hsz)) / entry);
    if (n <= 0 || n > 256) throw new ImageError(`${what}: ${bpp}-bit image without a usable palette (${n} entries)`);
    for (let y = 0, o = 0; y < ht; y++) {
      const r = row(y);
      for (let x = 0; x < w; x++, o += 3) {
        const v = bpp === 8 ? b[r + x]! : bpp === 4 ? (b[r + (x >> 1)]! >> (x & 1 ? 0 : 4)) & 15 : (b[r + (x >> 3)]! >> (7 - (x & 7))) & 1;
        if (v >= n) throw new ImageError(`${what}: palette index ${v} is past the ${n}-entry palette`);
        const p = headerEnd + v * entry;
        out[o] = b[p + 2]!;
        out[o + 1] = b[p + 1]!;
        out[o + 2] = b[p]!;
      }
    }
    return { width: w, height: ht, data: out };
  }
  const [mr, mg, mb] = h.masks;
  const easy = bpp === 24 || (bpp === 32 && mb === 0xff && mg === 0xff00 && mr === 0xff0000 && h.masks[3] === 0xff000000);
  if (bpp !== 16 && bpp !== 24 && bpp !== 32) throw new ImageError(`${what}: ${bpp} bits a pixel is not supported`);
  if (!easy && (!mr || !mg || !mb)) throw new ImageError(`${what}: bad colour masks`);
  const sh = [mr, mg, mb].map((m) => highBit(m) - 7);
  const cnt = [mr, mg, mb].map(bitCount);
  if (!easy && cnt.some((c) => c > 8)) throw new ImageError(`${what}: colour masks wider than 8 bits`);
  const bytes = bpp >> 3;
  for (let y = 0, o = 0; y < ht; y++) {
    const r = row(y);
    for (let x = 0; x < w; x++, o += 3) {
      const p = r + x * bytes;
      if (easy) {
        out[o] = b[p + 2]!;
        out[o + 1] = b[p + 1]!;
        out[o + 2] = b[p]!;
      } else {
        const v = bpp === 16 ? u16(b, p) : u32(b, p);
        out[o] = widen((v & mr) >>> 0, sh[0]!, cnt[0]!);
        out[o + 1] = widen((v & mg) >>> 0, sh[1]!, cnt[1]!);
        out[o + 2] = widen((v & mb) >>> 0, sh[2]!, cnt[2]!);
      }
    }
  }
  return { width: w, height: ht, data: out };
}
