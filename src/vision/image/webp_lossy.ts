// Lossy WebP (a VP8 frame, alone or in a VP8X container with an ALPH chunk) through libwebp itself,
// compiled to WebAssembly (@jsquash/webp, Squoosh's build; its decode is WebPDecodeRGBA with the
// default options, fancy upsampling included). A VP8 decoder of our own would be thousands of
// lines whose output would have to match libwebp's bit for bit; libwebp is that reference, and
// test/vision/image_webp_lossy.test.ts checks the bytes equal `dwebp -ppm`'s. The module is
// async (the .wasm is compiled on first use), so only decodeImageAsync reaches this file.
import type { RgbImage } from '../types.js';
import { ImageError } from './common.js';

type Decode = (buffer: ArrayBuffer) => Promise<{ width: number; height: number; data: Uint8ClampedArray }>;
let decoder: Promise<Decode> | undefined;

async function load(): Promise<Decode> {
  const mod = await import('@jsquash/webp/decode.js');
  if (typeof process === 'object' && typeof process.versions?.node === 'string') {
    // its own loader fetch()es webp_dec.wasm beside its script, and Node's fetch refuses file: URLs;
    // in a browser (or a bundle) that fetch is what serves it
    const { readFile } = await import('node:fs/promises');
    const wasm = await WebAssembly.compile(await readFile(new URL(import.meta.resolve('@jsquash/webp/codec/dec/webp_dec.wasm'))));
    // init() takes a compiled module (its .d.ts only lists the options form)
    await (mod.init as unknown as (m: WebAssembly.Module) => Promise<void>)(wasm);
  }
  return mod.default;
}

/** The RGB (alpha dropped) that libwebp decodes from lossy WebP bytes whose header said `width` x `height`. */
export async function decodeWebpLossy(b: Uint8Array, what: string, width: number, height: number): Promise<RgbImage> {
  decoder ??= load().catch((e: unknown) => {
    decoder = undefined; // a later call tries again
    throw new Error(`${what}: could not load the lossy WebP decoder (@jsquash/webp): ${(e as Error).message}`);
  });
  const decode = await decoder;
  let img: Awaited<ReturnType<Decode>>;
  try {
    // the module takes an ArrayBuffer: copy out exactly these bytes (b may be a view into a larger buffer)
    img = await decode(b.slice().buffer);
  } catch {
    throw new ImageError(`${what}: libwebp could not decode the lossy image data (truncated or corrupt)`);
  }
  if (img.width !== width || img.height !== height) throw new ImageError(`${what}: the header says ${width}x${height}, the image data ${img.width}x${img.height}`);
  const n = width * height;
  const rgb = new Uint8Array(n * 3);
  const rgba = img.data;
  for (let i = 0, j = 0; i < n; i++, j += 4) {
    rgb[i * 3] = rgba[j]!;
    rgb[i * 3 + 1] = rgba[j + 1]!;
    rgb[i * 3 + 2] = rgba[j + 2]!;
  }
  return { width, height, data: rgb };
}
