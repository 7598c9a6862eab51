// PNG to RGB bytes, giving what llama.cpp's stb_image gives with 3 channels requested: every colour
// type and bit depth, palette, Adam7 interlacing; alpha dropped (not composited), grey repeated
// into R, G, B, 16-bit samples cut to their high byte, 1/2/4-bit grey scaled to 0..255.
// Like stb_image, ancillary chunks (gamma, colour profiles) are ignored; unlike it, the CRCs of
// the critical chunks are checked, so that damage shows as an error rather than as wrong pixels.
import { unzlibSync } from 'fflate';
import type { RgbImage } from '../types.js';
import { ascii, checkSize, ImageError, type ImageInfo, u32be } from './common.js';

export const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

interface Header extends ImageInfo {
  depth: number;
  colour: number;
  interlace: number;
  channels: number;
}

// samples per pixel for each colour type, and the bit depths the PNG spec allows for it
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const DEPTHS: Record<number, number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
// Adam7 passes: x start, y start, x step, y step
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

let CRC_TABLE: Uint32Array | undefined;

/** CRC-32 (ISO 3309, as PNG uses) of b[at, at + n). */
function crc32(b: Uint8Array, at: number, n: number): number {
  if (!CRC_TABLE) {
    CRC_TABLE = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      CRC_TABLE[i] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = at; i < at + n; i++) c = CRC_TABLE[(c ^ b[i]!) & 255]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** IHDR, checked; `what` prefixes errors ("photo.png: PNG"). */
export function pngHeader(b: Uint8Array, what: string): Header {
  if (b.length < 33) throw new ImageError(`${what}: file is truncated (${b.length} bytes, the header alone is 33)`);
  if (ascii(b, 12, 4) !== 'IHDR' || u32be(b, 8) !== 13) throw new ImageError(`${what}: first chunk is '${ascii(b, 12, 4)}', not a 13-byte IHDR`);
  const width = u32be(b, 16);
  const height = u32be(b, 20);
  const depth = b[24]!;
  const colour = b[25]!;
  const interlace = b[28]!;
  const channels = CHANNELS[colour];
  if (channels === undefined) throw new ImageError(`${what}: unknown colour type ${colour}`);
  if (!DEPTHS[colour]!.includes(depth)) throw new ImageError(`${what}: bit depth ${depth} is not allowed for colour type ${colour}`);
  if (b[26] !== 0 || b[27] !== 0) throw new ImageError(`${what}: unknown compression method ${b[26]} or filter method ${b[27]}`);
  if (interlace > 1) throw new ImageError(`${what}: unknown interlace method ${interlace}`);
  if (width > 0x7fffffff || height > 0x7fffffff) throw new ImageError(`${what}: image size ${width}x${height} is out of range`);
  return { format: 'png', width, height, depth, colour, interlace, channels };
}

/** Decodes a whole PNG (the size limit checked on the header first, as decodeImage also does). */
export function decodePng(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const h = pngHeader(b, what);
  checkSize(h.width, h.height, maxPixels, what);
  let palette: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let idatLength = 0;
  let pos = 8;
  for (;;) {
    if (pos === b.length && idat.length > 0) break; // no IEND: tolerated when the data is complete
    if (pos + 12 > b.length) throw new ImageError(`${what}: file is truncated (chunk header at byte ${pos} of ${b.length})`);
    const len = u32be(b, pos);
    const type = ascii(b, pos + 4, 4);
    if (len > b.length - pos - 12) throw new ImageError(`${what}: file is truncated (chunk '${type}' at byte ${pos} says ${len} bytes, ${b.length - pos - 12} left)`);
    const data = b.subarray(pos + 8, pos + 8 + len);
    // critical chunks must match their CRC (as libpng requires; stb_image does not look): a
    // damaged file is an error, not an image with wrong pixels
    if ((type === 'IHDR' || type === 'PLTE' || type === 'IDAT') && crc32(b, pos + 4, len + 4) !== u32be(b, pos + 8 + len)) {
      throw new ImageError(`${what}: corrupt '${type}' chunk at byte ${pos} (CRC mismatch)`);
    }
    pos += 12 + len;
    if (type === 'IEND') break;
    if (type === 'PLTE') {
      if (len % 3 !== 0 || len === 0 || len > 768) throw new ImageError(`${what}: PLTE chunk of ${len} bytes is not 1..256 RGB entries`);
      palette = data;
    } else if (type === 'IDAT') {
      idat.push(data);
      idatLength += len;
    } else if (type !== 'IHDR' && (type.charCodeAt(0) & 0x20) === 0) {
      // an unknown critical chunk (upper-case first letter) means we cannot read the image right
      if (!/^[A-Za-z]{4}$/.test(type)) throw new ImageError(`${what}: corrupt chunk type at byte ${pos - 12 - len}`);
      throw new ImageError(`${what}: unknown critical chunk '${type}'`);
    }
  }
  if (idat.length === 0) throw new ImageError(`${what}: no image data (IDAT chunk)`);
  if (h.colour === 3 && !palette) throw new ImageError(`${what}: palette image without a PLTE chunk`);
  const z = new Uint8Array(idatLength);
  let o = 0;
  for (const d of idat) z.set(d, o), (o += d.length);

  // the filtered scanlines of every pass, one filter byte per row: the exact size is known, so
  // a stream that inflates to more is cut there (as stb_image does) and one that stops short is an error
  const passes = h.interlace ? ADAM7 : ([[0, 0, 1, 1]] as const);
  const bitsPerPixel = h.channels * h.depth;
  let rawLength = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (pw > 0 && ph > 0) rawLength += ph * (1 + Math.ceil((pw * bitsPerPixel) / 8));
  }
  let raw: Uint8Array;
  try {
    raw = unzlibSync(z, { out: new Uint8Array(rawLength) });
  } catch (e) {
    throw new ImageError(`${what}: corrupt or truncated image data (${(e as Error).message})`);
  }
  if (raw.length < rawLength) throw new ImageError(`${what}: image data is truncated (${raw.length} of ${rawLength} bytes)`);

  const out = new Uint8Array(h.width * h.height * 3);
  let at = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const pw = Math.ceil((h.width - x0) / dx);
    const ph = Math.ceil((h.height - y0) / dy);
    if (pw <= 0 || ph <= 0) continue;
    const stride = Math.ceil((pw * bitsPerPixel) / 8);
    const rows = raw.subarray(at, at + ph * (1 + stride));
    at += ph * (1 + stride);
    unfilter(rows, ph, stride, Math.max(1, bitsPerPixel >> 3), what);
    for (let y = 0; y < ph; y++) {
      const line = rows.subarray(y * (1 + stride) + 1, (y + 1) * (1 + stride));
      toRgb(line, pw, h, palette, out, ((y0 + y * dy) * h.width + x0) * 3, dx * 3, what);
    }
  }
  return { width: h.width, height: h.height, data: out };
}

/** Undoes the per-row filters in place (rows keep their leading filter byte). */
function unfilter(rows: Uint8Array, height: number, stride: number, bpp: number, what: string): void {
  const step = stride + 1;
  for (let y = 0; y < height; y++) {
    const s = y * step + 1; // first byte of this row
    const p = s - step; // first byte of the row above (invalid for y = 0)
    const filter = rows[s - 1]!;
    switch (filter) {
      case 0:
        break;
      case 1: // Sub
        for (let i = bpp; i < stride; i++) rows[s + i] = (rows[s + i]! + rows[s + i - bpp]!) & 255;
        break;
      case 2: // Up
        if (y > 0) for (let i = 0; i < stride; i++) rows[s + i] = (rows[s + i]! + rows[p + i]!) & 255;
        break;
      case 3: // Average
        for (let i = 0; i < stride; i++) {
          const left = i >= bpp ? rows[s + i - bpp]! : 0;
          const up = y > 0 ? rows[p + i]! : 0;
          rows[s + i] = (rows[s + i]! + ((left + up) >> 1)) & 255;
        }
        break;
      case 4: // Paeth
        for (let i = 0; i < stride; i++) {
          const a = i >= bpp ? rows[s + i - bpp]! : 0;
          const b = y > 0 ? rows[p + i]! : 0;
          const c = i >= bpp && y > 0 ? rows[p + i - bpp]! : 0;
          const pa = Math.abs(b - c);
          const pb = Math.abs(a - c);
          const pc = Math.abs(a + b - 2 * c);
          rows[s + i] = (rows[s + i]! + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 255;
        }
        break;
      default:
        throw new ImageError(`${what}: corrupt image data (row ${y} has filter type ${filter})`);
    }
  }
}

// 1/2/4-bit grey scaled to 8 bits as stb_image does (0x55 = 255/3, 0x11 = 255/15)
const SCALE: Record<number, number> = { 1: 0xff, 2: 0x55, 4: 0x11, 8: 1 };

/** One unfiltered row of `n` pixels to RGB at out[o], out[o + step], ... */
function toRgb(line: Uint8Array, n: number, h: Header, palette: Uint8Array | undefined, out: Uint8Array, o: number, step: number, what: string): void {
  const { depth, colour } = h;
  if (depth < 8) {
    const perByte = 8 / depth;
    const mask = (1 << depth) - 1;
    for (let x = 0; x < n; x++, o += step) {
      const v = (line[(x / perByte) | 0]! >> (8 - depth * ((x % perByte) + 1))) & mask;
      if (colour === 3) setPalette(palette!, v, out, o, what);
      else out[o] = out[o + 1] = out[o + 2] = v * SCALE[depth]!;
    }
    return;
  }
  // 8 or 16 bits: sample k of pixel x is at byte (x * channels + k) * bytes; high byte first
  const bytes = depth >> 3;
  const stride = h.channels * bytes;
  for (let x = 0, i = 0; x < n; x++, i += stride, o += step) {
    if (colour === 3) setPalette(palette!, line[i]!, out, o, what);
    else if (colour === 0 || colour === 4) out[o] = out[o + 1] = out[o + 2] = line[i]!;
    else {
      out[o] = line[i]!;
      out[o + 1] = line[i + bytes]!;
      out[o + 2] = line[i + 2 * bytes]!;
    }
  }
}

function setPalette(palette: Uint8Array, v: number, out: Uint8Array, o: number, what: string): void {
  if (3 * v >= palette.length) throw new ImageError(`${what}: palette index ${v} is past the ${palette.length / 3}-entry PLTE`);
  out[o] = palette[3 * v]!;
  out[o + 1] = palette[3 * v + 1]!;
  out[o + 2] = palette[3 * v + 2]!;
}
