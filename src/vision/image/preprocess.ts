// What llama.cpp's mtmd `dyn_size` preprocessor (mtmd-image.cpp) does to a decoded image before
// the Qwen vision tower sees it (VISION.md section 4): pick a size that is a multiple of
// patch * merge with a pixel count in [minPixels, maxPixels] ("smart resize", float32 arithmetic),
// resize keeping the aspect ratio with Pillow's fixed-point bicubic filter, centre it on a black
// canvas of that size, and normalise each channel to (x / 255 - mean) / std in float32.
// HF's Qwen2-VL image processor stretches to the target size instead of padding; we follow
// llama.cpp, whose outputs are this project's reference.
import type { Pixels, RgbImage } from '../types.js';
import { ImageError } from './common.js';

const f32 = Math.fround;

/** llama.cpp's fixed smart-resize limits for the Qwen projectors (mtmd set_limit_image_tokens(8, 4096)), in merged tokens. */
export const LLAMA_MIN_TOKENS = 8;
export const LLAMA_MAX_TOKENS = 4096;

/** C's round(): half away from zero (Math.round rounds -2.5 to -2). */
function cRound(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * The target size, as mtmd's calc_size_preserved_ratio computes it in float32:
 * both sides multiples of `factor`, at least `factor`, area within [minPixels, maxPixels]
 * (up to the rounding to multiples), aspect ratio kept as far as that allows.
 */
export function smartSize(width: number, height: number, factor: number, minPixels: number, maxPixels: number): { width: number; height: number } {
  if (!(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0)) throw new ImageError(`smartSize: image size ${width}x${height} is not positive`);
  if (!(Number.isInteger(factor) && factor > 0)) throw new ImageError(`smartSize: factor ${factor} must be a positive integer`);
  if (!(minPixels > 0 && maxPixels >= minPixels)) throw new ImageError(`smartSize: pixel bounds [${minPixels}, ${maxPixels}] are not a positive range`);
  const f = f32(factor);
  const roundBy = (x: number) => cRound(f32(f32(x) / f)) * factor;
  const ceilBy = (x: number) => Math.ceil(f32(x / f)) * factor;
  const floorBy = (x: number) => Math.floor(f32(x / f)) * factor;
  let h = Math.max(factor, roundBy(height));
  let w = Math.max(factor, roundBy(width));
  if (h * w > maxPixels) {
    // float(height * width) / max_pixels: the int product is rounded to float first
    const beta = f32(Math.sqrt(f32(f32(height * width) / f32(maxPixels))));
    h = Math.max(factor, floorBy(f32(height / beta)));
    w = Math.max(factor, floorBy(f32(width / beta)));
  } else if (h * w < minPixels) {
    const beta = f32(Math.sqrt(f32(f32(minPixels) / f32(height * width))));
    h = ceilBy(f32(height * beta));
    w = ceilBy(f32(width * beta));
  }
  return { width: w, height: h };
}

// Pillow's bicubic kernel with a = -0.5 (support 2), as in Pillow's Resample.c and mtmd-image.cpp
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

const PRECISION_BITS = 32 - 8 - 2; // 22-bit fixed-point weights

/** Per output pixel: first input index, count, and its fixed-point weights (ksize apart). */
function coefficients(inSize: number, outSize: number): { ksize: number; bounds: Int32Array; weights: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1); // antialiasing: widen the kernel when shrinking
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const xcnt = xmax - xmin;
    let ww = 0;
    for (let x = 0; x < xcnt; x++) ww += pre[x] = bicubic((x + xmin - center + 0.5) * ss);
    for (let x = 0; x < xcnt; x++) {
      const k = ww !== 0 ? pre[x]! / ww : pre[x]!;
      // (int32)(k * 2^22 +- 0.5): truncation toward zero after adding a half of the sign
      weights[xx * ksize + x] = Math.trunc(k < 0 ? -0.5 + k * (1 << PRECISION_BITS) : 0.5 + k * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xcnt;
  }
  return { ksize, bounds, weights };
}

function clip8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resize to width x height with Pillow's BICUBIC filter on 8-bit RGB: horizontal pass, then
 * vertical, each rounded and clamped to 0..255 (bit-identical to Pillow's Image.resize and to
 * mtmd-image.cpp's resize_bicubic_pillow). A side that keeps its size skips its pass.
 */
export function resizeBicubic(img: RgbImage, width: number, height: number): RgbImage {
  if (!(width > 0 && height > 0)) throw new ImageError(`resizeBicubic: target size ${width}x${height} is empty`);
  let cur = img;
  if (width !== img.width) {
    const { ksize, bounds, weights } = coefficients(img.width, width);
    const out = new Uint8Array(width * img.height * 3);
    const src = img.data;
    for (let y = 0; y < img.height; y++) {
      const row = y * img.width * 3;
      for (let xx = 0; xx < width; xx++) {
        const xmin = bounds[xx * 2]!;
        const xcnt = bounds[xx * 2 + 1]!;
        let s0 = 1 << (PRECISION_BITS - 1);
        let s1 = s0;
        let s2 = s0;
        for (let x = 0; x < xcnt; x++) {
          const k = weights[xx * ksize + x]!;
          const i = row + (xmin + x) * 3;
          s0 += src[i]! * k;
          s1 += src[i + 1]! * k;
          s2 += src[i + 2]! * k;
        }
        const o = (y * width + xx) * 3;
        out[o] = clip8(s0 >> PRECISION_BITS);
        out[o + 1] = clip8(s1 >> PRECISION_BITS);
        out[o + 2] = clip8(s2 >> PRECISION_BITS);
      }
    }
    cur = { width, height: img.height, data: out };
  }
  if (height !== cur.height) {
    const { ksize, bounds, weights } = coefficients(cur.height, height);
    const out = new Uint8Array(width * height * 3);
    const src = cur.data;
    const w3 = width * 3;
    // whole input rows into an accumulator row (contiguous reads; integer sums, so the order does not matter)
    const acc = new Int32Array(w3);
    for (let yy = 0; yy < height; yy++) {
      const ymin = bounds[yy * 2]!;
      const ycnt = bounds[yy * 2 + 1]!;
      acc.fill(1 << (PRECISION_BITS - 1));
      for (let y = 0; y < ycnt; y++) {
        const k = weights[yy * ksize + y]!;
        const row = (ymin + y) * w3;
        for (let c = 0; c < w3; c++) acc[c]! += src[row + c]! * k;
      }
      const o = yy * w3;
      for (let c = 0; c < w3; c++) out[o + c] = clip8(acc[c]! >> PRECISION_BITS);
    }
    cur = { width, height, data: out };
  }
  return cur === img ? { width, height, data: img.data.slice() } : cur;
}

/**
 * mtmd's resize with padding: scale to fit inside width x height keeping the aspect ratio
 * (float32 scale, sides rounded up and capped), bicubic resize, and paste centred (offsets
 * rounded down) on a black canvas. An image already of the target size is returned as is.
 */
export function resizePad(img: RgbImage, width: number, height: number): RgbImage {
  if (img.width === width && img.height === height) return img;
  const scale = Math.min(f32(width / img.width), f32(height / img.height));
  const rw = Math.min(Math.ceil(f32(img.width * scale)), width);
  const rh = Math.min(Math.ceil(f32(img.height * scale)), height);
  const resized = resizeBicubic(img, rw, rh);
  const out = new Uint8Array(width * height * 3); // black
  const ox = (width - rw) >> 1;
  const oy = (height - rh) >> 1;
  for (let y = 0; y < rh; y++) out.set(resized.data.subarray(y * rw * 3, (y + 1) * rw * 3), ((oy + y) * width + ox) * 3);
  return { width, height, data: out };
}

/** (x / 255 - mean[c]) / std[c] in float32, interleaved RGB in, planar [3, H, W] out. */
export function normalize(img: RgbImage, mean: ArrayLike<number>, std: ArrayLike<number>): Pixels {
  const n = img.width * img.height;
  const data = new Float32Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]!);
    const s = f32(std[c]!);
    if (!Number.isFinite(m) || !Number.isFinite(s) || s === 0) throw new ImageError(`normalize: mean ${mean[c]} / std ${std[c]} of channel ${c} are not usable`);
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = f32(f32(f32(v / 255) - m) / s);
    const plane = data.subarray(c * n, (c + 1) * n);
    for (let i = 0; i < n; i++) plane[i] = lut[img.data[i * 3 + c]!]!;
  }
  return { width: img.width, height: img.height, data };
}

export interface PreprocessOptions {
  patch: number; // patch size in pixels (14 for Qwen2.5-VL, 16 for Qwen3.5)
  merge: number; // spatial merge size (2)
  mean: ArrayLike<number>; // 3 values
  std: ArrayLike<number>;
  /** pixel-count bounds of the resized image; default 8 and 4096 merged tokens (llama.cpp's fixed limits) */
  minPixels?: number;
  maxPixels?: number;
}

/** The pixels the tower takes: smart size, aspect-preserving bicubic resize + black padding, normalisation. */
export function preprocess(img: RgbImage, o: PreprocessOptions): Pixels {
  const f = o.patch * o.merge;
  const minPixels = o.minPixels ?? LLAMA_MIN_TOKENS * f * f;
  const maxPixels = o.maxPixels ?? LLAMA_MAX_TOKENS * f * f;
  const t = smartSize(img.width, img.height, f, minPixels, maxPixels);
  // a very thin image keeps its long side past maxPixels (the short side cannot go below f);
  // mtmd refuses resize targets over 65536 a side, and so do we, before allocating
  if (t.width > 65536 || t.height > 65536) {
    throw new ImageError(`preprocess: a ${img.width}x${img.height} image would be resized to ${t.width}x${t.height}, over 65536 a side (aspect ratio too extreme)`);
  }
  if (img.data.length !== img.width * img.height * 3) throw new ImageError(`preprocess: ${img.width}x${img.height} RGB image has ${img.data.length} bytes, expected ${img.width * img.height * 3}`);
  return normalize(resizePad(img, t.width, t.height), o.mean, o.std);
}
