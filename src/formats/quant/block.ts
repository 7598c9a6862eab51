// Pieces every ggml 32-value block format shares: the f16 scale (and min) at the block's start,
// the u32 of fifth bits of Q5_0 / Q5_1, and the scans the reference quantisers start with.
import { f16Table, f32ToF16 } from './half.js';

/** The little-endian f16 at byte p, as f32. */
export function f16At(src: Uint8Array, p: number): number {
  return f16Table()[src[p]! | (src[p + 1]! << 8)]!;
}

/** Store x as a little-endian f16 at byte p. */
export function putF16(dst: Uint8Array, p: number, x: number): void {
  const h = f32ToF16(x);
  dst[p] = h & 0xff;
  dst[p + 1] = h >>> 8;
}

export function u32At(src: Uint8Array, p: number): number {
  return (src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16) | (src[p + 3]! << 24)) >>> 0;
}

export function putU32(dst: Uint8Array, p: number, v: number): void {
  dst[p] = v & 0xff;
  dst[p + 1] = (v >>> 8) & 0xff;
  dst[p + 2] = (v >>> 16) & 0xff;
  dst[p + 3] = v >>> 24;
}

/** Element j (0..31) of a nibble block at q, with its fifth bit from qh when given. */
export function nibble(src: Uint8Array, q: number, j: number, qh = 0): number {
  const lo = j < 16 ? src[q + j]! & 0x0f : src[q + j - 16]! >>> 4;
  return lo | (((qh >>> j) & 1) << 4);
}

/** The signed value of largest magnitude in src[s..s+n); the first one wins a tie (strict <). */
export function signedAbsMax(src: Float32Array, s: number, n = 32): number {
  let amax = 0,
    max = 0;
  for (let j = 0; j < n; j++) {
    const v = src[s + j]!;
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  return max;
}

/** [min, max] of src[s..s+32), as ggml's reference quantisers scan it. */
export function minMax(src: Float32Array, s: number): [number, number] {
  let min = 3.4028234663852886e38,
    max = -3.4028234663852886e38;
  for (let j = 0; j < 32; j++) {
    const v = src[s + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}
