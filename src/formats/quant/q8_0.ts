// block_q8_0 (ggml-common.h): f16 d, then 32 int8 qs; value = qs[j] * d. 34 bytes per 32 values.
import { putF16 } from './block.js';
import { f16Table } from './half.js';

export const QK8_0 = 32;
export const BLOCK_Q8_0_BYTES = 34;

export function dequantizeQ8_0(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const t = f16Table();
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    p += 2;
    for (let j = 0; j < QK8_0; j++) {
      const q = (src[p + j]! << 24) >> 24; // sign-extend the int8
      dst[o + j] = q * d; // |q| < 2^8, d has 11 significant bits: exact, as in C
    }
    p += QK8_0;
    o += QK8_0;
  }
}

/** ggml's roundf: halves round away from zero (Math.round rounds -2.5 to -2). */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** quantize_row_q8_0_ref, with every float operation rounded to binary32 as C does. */
export function quantizeQ8_0(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const fr = Math.fround;
  let s = srcOffset;
  let p = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(src[s + j]!);
      amax = amax > a ? amax : a; // ggml's MAX(a, b) macro, NaN behaviour included
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    putF16(dst, p, d);
    p += 2;
    for (let j = 0; j < QK8_0; j++) dst[p + j] = roundf(fr(src[s + j]! * id)) & 0xff;
    p += QK8_0;
    s += QK8_0;
  }
}
