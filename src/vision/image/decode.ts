// Image bytes to RGB: the format is sniffed from the magic bytes (never from the file name), the
// header is checked against the pixel limit before anything the size of the image is allocated,
// and anything that is not PNG, JPEG, WebP, GIF or BMP gets an error that says what it looks like.
// As in llama.cpp, EXIF orientation, gamma and colour profiles are not applied: the pixels are
// used as stored.
import type { RgbImage } from '../types.js';
import { ascii, checkSize, DEFAULT_MAX_PIXELS, type DecodeOptions, ImageError, type ImageFormat, type ImageInfo, label, u16le } from './common.js';
import { bmpHeader, decodeBmp } from './bmp.js';
import { decodeGif, gifHeader } from './gif.js';
import { decodeJpeg, jpegHeader } from './jpeg.js';
import { decodePng, PNG_MAGIC, pngHeader } from './png.js';
import { decodeWebp, webpData, webpHeader } from './webp.js';
import { decodeWebpLossy } from './webp_lossy.js';

export { DEFAULT_MAX_PIXELS, type DecodeOptions, ImageError, type ImageFormat, type ImageInfo } from './common.js';

const NAMES: Record<ImageFormat, string> = { png: 'PNG', jpeg: 'JPEG', webp: 'WebP', gif: 'GIF', bmp: 'BMP' };

/** The format by magic bytes, or an ImageError naming what the bytes look like. */
function sniffFormat(b: Uint8Array, name?: string): ImageFormat {
  if (b.length >= 8 && PNG_MAGIC.every((v, i) => b[i] === v)) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  if (b.length >= 18 && ascii(b, 0, 2) === 'BM' && [12, 40, 56, 108, 124].includes(u16le(b, 14)) && b[16] === 0 && b[17] === 0) return 'bmp';
  const where = name ? `${name}: ` : '';
  throw new ImageError(`${where}not a PNG, JPEG, WebP, GIF or BMP image (${lookalike(b)})`);
}

/** A guess at what some non-image bytes are, for the error message. */
function lookalike(b: Uint8Array): string {
  if (b.length === 0) return 'the data is empty';
  const head = ascii(b, 0, 16);
  if (b.length < 8 && '\x89PNG\r\n\x1a\n'.startsWith(head)) return `it starts like a PNG but is only ${b.length} bytes long`;
  if (b.length < 3 && '\xff\xd8\xff'.startsWith(head)) return `it starts like a JPEG but is only ${b.length} bytes long`;
  if (head.startsWith('GIF8')) return `it starts like a GIF but its version is '${head.slice(3, 6)}'`;
  if (head.startsWith('BM')) return 'it looks like a BMP image';
  if (head.startsWith('II*\0') || head.startsWith('MM\0*')) return 'it is a TIFF image';
  if (head.startsWith('8BPS')) return 'it is a Photoshop image';
  if (head.startsWith('\0\0\x01\0')) return 'it looks like an ICO icon';
  if (head.startsWith('qoif')) return 'it is a QOI image';
  if (head.startsWith('\xff\x0a') || head.startsWith('\0\0\0\x0cJXL ')) return 'it is a JPEG XL image';
  if (head.slice(4, 8) === 'ftyp') {
    const brand = head.slice(8, 12);
    if (/^(heic|heix|hevc|heim|heis|mif1|msf1)$/.test(brand)) return 'it is a HEIF/HEIC image';
    if (/^avi[fs]$/.test(brand)) return 'it is an AVIF image';
    return `it is an ISO media file (brand '${brand}')`;
  }
  if (head.startsWith('RIFF')) return `it is a RIFF '${ascii(b, 8, 4)}' file`;
  if (head.startsWith('%PDF')) return 'it is a PDF document';
  if (b[0] === 0x1f && b[1] === 0x8b) return 'it is gzip-compressed data';
  if (head.startsWith('PK\x03\x04')) return 'it is a ZIP archive';
  const text = ascii(b, 0, 256).trimStart().toLowerCase();
  if (text.startsWith('<svg') || (text.startsWith('<?xml') && text.includes('<svg'))) return 'it is an SVG drawing, which is not a bitmap';
  if (text.startsWith('<!doctype html') || text.startsWith('<html')) return 'it is an HTML page';
  if (text.startsWith('{') || text.startsWith('[')) return 'it looks like JSON';
  if (/^data:image\/[a-z+]+;base64,/.test(text)) return 'it is a data: URL; decode its base64 first';
  if (/^[A-Za-z0-9+/=\s]+$/.test(ascii(b, 0, 64)) && (head.startsWith('iVBOR') || head.startsWith('/9j/'))) return 'it is base64 text; decode it first';
  const hex = Array.from(b.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
  return `first bytes ${hex}`;
}

/**
 * Format and size from the header alone (no pixel decoding, no allocation the size of the image).
 * Kinds decodeImage refuses whatever their size (animated WebP, an unknown format) throw here too.
 */
export function probeImage(bytes: Uint8Array, name?: string): ImageInfo {
  const format = sniffFormat(bytes, name);
  const what = label(name, NAMES[format]);
  if (format === 'png') {
    const { width, height } = pngHeader(bytes, what);
    return { format, width, height };
  }
  if (format === 'jpeg') {
    const { width, height } = jpegHeader(bytes, what);
    return { format, width, height };
  }
  if (format === 'gif') return gifHeader(bytes, what);
  if (format === 'bmp') {
    const { width, height } = bmpHeader(bytes, what);
    return { format, width, height };
  }
  const info = webpHeader(bytes, what);
  webpData(bytes, what); // animated WebP and missing chunks: refused here already, so a server can say so up front
  return info;
}

/**
 * Decodes PNG or JPEG bytes to RGB (alpha dropped, grey repeated), as llama.cpp's stb_image does
 * with 3 channels requested (also GIF, its first frame, and BMP), and lossless WebP (which llama.cpp
 * does not read; lossy WebP needs decodeImageAsync and is an ImageError here). Throws ImageError for
 * anything it cannot decode, for truncated or corrupt data, and for images over `maxPixels` (checked
 * on the header, before decoding).
 */
export function decodeImage(bytes: Uint8Array, name?: string, opts: DecodeOptions = {}): RgbImage {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const info = probeImage(bytes, name);
  const what = label(name, NAMES[info.format]);
  checkSize(info.width, info.height, maxPixels, what);
  if (info.format === 'png') return decodePng(bytes, what, maxPixels);
  if (info.format === 'jpeg') return decodeJpeg(bytes, what, maxPixels);
  if (info.format === 'gif') return decodeGif(bytes, what, maxPixels);
  if (info.format === 'bmp') return decodeBmp(bytes, what, maxPixels);
  return decodeWebp(bytes, what, maxPixels);
}

/**
 * decodeImage, and lossy WebP too: libwebp compiled to WebAssembly (@jsquash/webp), which loads
 * asynchronously on first use. Same checks and errors (as rejections) as decodeImage.
 */
export async function decodeImageAsync(bytes: Uint8Array, name?: string, opts: DecodeOptions = {}): Promise<RgbImage> {
  const info = probeImage(bytes, name);
  if (info.format !== 'webp' || webpData(bytes, label(name, 'WebP')) !== 'lossy') return decodeImage(bytes, name, opts);
  const what = label(name, 'WebP');
  checkSize(info.width, info.height, opts.maxPixels ?? DEFAULT_MAX_PIXELS, what);
  return decodeWebpLossy(bytes, what, info.width, info.height);
}
