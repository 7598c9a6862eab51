// block_q6_K (ggml-common.h), 256 values in 16 sub-blocks of 16, 210 bytes:
//   128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d.
// Each half (128 values) uses 64 ql bytes, 32 qh bytes and 8 scales; for l in 0..31:
//   y[l]    = low nibble of ql[l]    | qh[l] bits 0-1 << 4
//   y[l+32] = low nibble of ql[l+32] | qh[l] bits 2-3 << 4
//   y[l+64] = high nibble of ql[l]   | qh[l] bits 4-5 << 4
//   y[l+96] = high nibble of ql[l+32]| qh[l] bits 6-7 << 4
// each minus 32, times d * scales[l/16 + 0, 2, 4, 6] (dequantize_row_q6_K).
import { f16Table, f16ToF32, f32ToF16 } from './half.js';
import { signedAbsMax } from './block.js';
import { nearestInt } from './kblock.js';

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);

export const BLOCK_Q6_K_BYTES = 210;

export function dequantizeQ6_K(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const t = f16Table();
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p + 208]! | (src[p + 209]! << 8)]!;
    let ql = p;
    let qh = p + 128;
    let sc = p + 192;
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l]!;
        const a = src[ql + l]!;
        const c = src[ql + l + 32]!;
        const q1 = ((a & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((c & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
        const q3 = ((a >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
        const q4 = ((c >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
        // (d*sc) is exact in binary32; the product with q is rounded once, on the store
        dst[o + l] = d * ((src[sc + is]! << 24) >> 24) * q1;
        dst[o + l + 32] = d * ((src[sc + is + 2]! << 24) >> 24) * q2;
        dst[o + l + 64] = d * ((src[sc + is + 4]! << 24) >> 24) * q3;
        dst[o + l + 96] = d * ((src[sc + is + 6]! << 24) >> 24) * q4;
      }
      o += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
    p += BLOCK_Q6_K_BYTES;
  }
}

/**
 * make_qx_quants with rmse_type 1 and no importance weights: symmetric levels in
 * [-nmax, nmax-1] for x[xo..xo+n), weights x^2, 19 candidate scales. Writes L = level + nmax.
 */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const max = signedAbsMax(x, xo, n); // the first value of the largest magnitude
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const clampL = (v: number) => Math.max(-nmax, Math.min(nmax - 1, v));
  // returns [sumlx, suml2] for a trial inverse scale; writes levels when `write`
  const trial = (iscale: number, write: boolean): [number, number] => {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const l = clampL(nearestInt(fr(iscale * v)));
      if (write) L[lo + i] = l + nmax;
      const w = fr(v * v);
      sumlx = fr(sumlx + fr(fr(w * v) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    return [sumlx, suml2];
  };
  let [sumlx, suml2] = trial(fr(-nmax / max), true);
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    const iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    [sumlx, suml2] = trial(iscale, false);
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      trial(iscale, true);
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** quantize_row_q6_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ6_K(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Int8Array(256);
  const scales = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * 256;
    const p = dstOffset + b * BLOCK_Q6_K_BYTES;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const s = makeQxQuants(16, 32, src, xo + 16 * ib, L, 16 * ib);
      scales[ib] = s;
      if (Math.abs(s) > maxAbsScale) {
        maxAbsScale = Math.abs(s);
        maxScale = s;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      dst.fill(0, p, p + BLOCK_Q6_K_BYTES);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dh = f32ToF16(fr(1 / iscale));
    dst[p + 208] = dh & 0xff;
    dst[p + 209] = dh >>> 8;
    const d = f16ToF32(dh);
    for (let ib = 0; ib < 16; ib++) dst[p + 192 + ib] = Math.min(127, nearestInt(fr(iscale * scales[ib]!))) & 0xff;
    for (let j = 0; j < 16; j++) {
      const dj = d * ((dst[p + 192 + j]! << 24) >> 24);
      if (!dj) continue; // keeps the levels from makeQxQuants, as ggml does
      for (let i = 0; i < 16; i++) {
        L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(fr(src[xo + 16 * j + i]! / dj)))) + 32;
      }
    }
    for (let h = 0; h < 2; h++) {
      const ql = p + 64 * h;
      const qh = p + 128 + 32 * h;
      const o = 128 * h;
      for (let l = 0; l < 32; l++) {
        const a = L[o + l]!,
          c = L[o + l + 32]!,
          e = L[o + l + 64]!,
          f = L[o + l + 96]!;
        dst[ql + l] = (a & 0xf) | ((e & 0xf) << 4);
        dst[ql + l + 32] = (c & 0xf) | ((f & 0xf) << 4);
        dst[qh + l] = (a >> 4) | ((c >> 4) << 2) | ((e >> 4) << 4) | ((f >> 4) << 6);
      }
    }
  }
}
