// What the image decoders share: the error type, the header shape, and the pixel limit that is
// checked against the header before any pixel buffer is allocated. No node: imports in this
// folder: the decoders are meant to run in a browser as well.

/** A bad or unsupported image: the message names the file (when known) and what is wrong. */
export class ImageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageError';
  }
}

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'bmp';

/** What the header says, read without decoding pixels. */
export interface ImageInfo {
  format: ImageFormat;
  width: number;
  height: number;
}

/** 50 megapixels: a 7000 x 7000 photo passes; a 50,000 x 50,000 header is refused before allocation. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

export interface DecodeOptions {
  /** refuse images with more pixels than this (default DEFAULT_MAX_PIXELS) */
  maxPixels?: number;
}

/** `name: ` or nothing, for error messages. */
export function label(name: string | undefined, format: string): string {
  return name ? `${name}: ${format}` : format;
}

/** Throws unless width x height is a non-empty image within the pixel limit. */
export function checkSize(width: number, height: number, maxPixels: number, what: string): void {
  if (!(width > 0) || !(height > 0)) throw new ImageError(`${what}: image size ${width}x${height} is empty`);
  if (width * height > maxPixels) {
    const mp = (n: number) => (n / 1e6).toFixed(n < 1e7 ? 1 : 0);
    throw new ImageError(`${what}: image is ${width}x${height} (${mp(width * height)} megapixels), over the limit of ${mp(maxPixels)} megapixels (maxPixels)`);
  }
}

export function u32be(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function u32le(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

export function u16le(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

export function ascii(b: Uint8Array, o: number, n: number): string {
  let s = '';
  for (let i = 0; i < n && o + i < b.length; i++) s += String.fromCharCode(b[o + i]!);
  return s;
}
