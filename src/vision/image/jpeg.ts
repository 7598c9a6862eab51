// JPEG to RGB bytes through jpeg-js (pure JS: baseline, extended and progressive Huffman JPEGs,
// grey, YCbCr and Adobe CMYK/YCCK). Its IDCT and chroma upsampling are not stb_image's (llama.cpp's
// decoder): pixels can differ by a few levels, mostly at colour edges; see test/vision/image_decode.test.ts
// for the measured difference. The header is read here first so that the size limit and the
// formats nobody here decodes (arithmetic coding, lossless, 12-bit) give a clear error up front.
import jpeg from 'jpeg-js';
import type { RgbImage } from '../types.js';
import { checkSize, ImageError, type ImageInfo, u16be } from './common.js';

interface Header extends ImageInfo {
  sof: number; // 0xc0.. frame marker
  precision: number;
  components: number;
  sos: number; // byte offset of the first start-of-scan marker (-1 if the header ends before it)
}

const SOF_NAMES = new Map<number, string>([
  [0xc3, 'lossless'],
  [0xc5, 'differential sequential'],
  [0xc6, 'differential progressive'],
  [0xc7, 'differential lossless'],
  [0xc9, 'arithmetic-coded sequential'],
  [0xca, 'arithmetic-coded progressive'],
  [0xcb, 'arithmetic-coded lossless'],
  [0xcd, 'differential arithmetic-coded sequential'],
  [0xce, 'differential arithmetic-coded progressive'],
  [0xcf, 'differential arithmetic-coded lossless'],
]);

/** Walks the markers up to the frame header (and the first scan, when present). */
export function jpegHeader(b: Uint8Array, what: string): Header {
  let pos = 2;
  let h: Header | undefined;
  while (pos < b.length) {
    if (b[pos] !== 0xff) throw new ImageError(`${what}: corrupt marker at byte ${pos} (0x${b[pos]!.toString(16)} where 0xff was expected)`);
    while (b[pos] === 0xff) pos++; // fill bytes
    if (pos >= b.length) break;
    const m = b[pos]!;
    const at = pos - 1;
    pos++;
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) continue; // markers without a length
    if (m === 0xd9) {
      if (h) return h; // sos -1: decodeJpeg refuses it after the size checks
      throw new ImageError(`${what}: end of image before any frame header`);
    }
    if (pos + 2 > b.length) break;
    const len = u16be(b, pos);
    if (len < 2) throw new ImageError(`${what}: corrupt segment length ${len} at byte ${pos}`);
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (pos + 8 > b.length) break;
      if (h) throw new ImageError(`${what}: more than one frame header`);
      h = { format: 'jpeg', sof: m, precision: b[pos + 2]!, height: u16be(b, pos + 3), width: u16be(b, pos + 5), components: b[pos + 7]!, sos: -1 };
    } else if (m === 0xda) {
      if (!h) throw new ImageError(`${what}: scan before the frame header`);
      h.sos = at;
      return h;
    }
    pos += len;
  }
  if (h) return h;
  throw new ImageError(`${what}: file is truncated (no frame header in ${b.length} bytes)`);
}

export function decodeJpeg(b: Uint8Array, what: string, maxPixels: number): RgbImage {
  const h = jpegHeader(b, what);
  const kind = SOF_NAMES.get(h.sof);
  if (kind) throw new ImageError(`${what}: ${kind} JPEG is not supported (baseline and progressive are)`);
  if (h.precision !== 8) throw new ImageError(`${what}: ${h.precision}-bit JPEG is not supported (8-bit only)`);
  if (![1, 3, 4].includes(h.components)) throw new ImageError(`${what}: JPEG with ${h.components} components is not supported`);
  checkSize(h.width, h.height, maxPixels, what);
  if (h.sos < 0) throw new ImageError(`${what}: file is truncated (no image data after the header)`);
  // entropy-coded data cannot hold 0xff 0xd9 (a 0xff data byte is followed by 0x00), so a missing
  // end-of-image marker after the first scan means the file was cut (jpeg-js would fill in grey)
  let end = -1;
  for (let i = b.length - 2; i > h.sos; i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) {
      end = i;
      break;
    }
  }
  if (end < 0) throw new ImageError(`${what}: file is truncated (no end-of-image marker)`);
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(b.subarray(0, end + 2), {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: maxPixels / 1e6,
      // jpeg-js counts its own buffers (components at full size, output): allow what the pixel limit allows
      maxMemoryUsageInMB: Math.max(512, Math.ceil((h.width * h.height * 16) / 2 ** 20)),
    });
  } catch (e) {
    throw new ImageError(`${what}: corrupt image data (${(e as Error).message})`);
  }
  if (img.width !== h.width || img.height !== h.height || img.data.length !== h.width * h.height * 3) {
    throw new ImageError(`${what}: decoder returned ${img.width}x${img.height}, the header says ${h.width}x${h.height}`);
  }
  return { width: img.width, height: img.height, data: img.data };
}
