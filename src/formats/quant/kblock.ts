// Pieces the 256-value K-quant super-blocks share (ggml-quants.c): ggml's nearest_int, the
// 6-bit scale/min packing of Q4_K / Q5_K (get_scale_min_k4) and make_qkx2_quants, the weighted
// (scale, min) fit that quantize_row_q2_K_ref / q4_K_ref / q5_K_ref start from. Every float
// operation is rounded to binary32 (Math.fround) as the C code, compiled without FMA, does.

import { f32Bits } from './half.js';

const fr = Math.fround;

export const QK_K = 256;

/**
 * ggml's nearest_int: the low 23 bits of the binary32 sum x + 1.5*2^23, minus 2^22. That is x
 * rounded half to even for |x| < 2^22; beyond (ggml's assert is compiled out) it is the same
 * wrapped value C gets, so a clamp after it picks the same level.
 */
export function nearestInt(x: number): number {
  return (f32Bits(fr(x + 12582912)) & 0x7fffff) - 0x400000;
}

/**
 * get_scale_min_k4: sub-blocks 0..3 keep scale and min in the low 6 bits of bytes j and j+4;
 * sub-blocks 4..7 take the low/high nibble of byte j+4 plus the top 2 bits of bytes j-4 / j.
 * `s` is the offset of the 12 scale bytes in `b`; writes [scale, min] into `out`.
 */
export function scaleMinK4(j: number, b: Uint8Array, s: number, out: Uint8Array | number[]): void {
  if (j < 4) {
    out[0] = b[s + j]! & 63;
    out[1] = b[s + j + 4]! & 63;
  } else {
    out[0] = (b[s + j + 4]! & 0x0f) | ((b[s + j - 4]! >>> 6) << 4);
    out[1] = (b[s + j + 4]! >>> 4) | ((b[s + j]! >>> 6) << 4);
  }
}

/** The inverse of scaleMinK4 for 8 (scale, min) pairs of 6 bits: the 12 bytes at dst[s..]. */
export function packScaleMinK4(ls: ArrayLike<number>, lm: ArrayLike<number>, dst: Uint8Array, s: number): void {
  dst.fill(0, s, s + 12);
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      dst[s + j] = ls[j]!;
      dst[s + j + 4] = lm[j]!;
    } else {
      dst[s + j + 4] = (ls[j]! & 0xf) | ((lm[j]! & 0xf) << 4);
      dst[s + j - 4] |= (ls[j]! >> 4) << 6;
      dst[s + j] |= (lm[j]! >> 4) << 6;
    }
  }
}

/**
 * make_qkx2_quants: fit x ~ scale*L - theMin with L in [0, nmax] and weights w, trying
 * nstep+1 candidate scales; the error is weighted squared (or absolute, `useMad`) difference.
 * Fills L[lo..lo+n) and returns [scale, theMin].
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  w: Float32Array,
  L: Uint8Array,
  lo: number,
  laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad = false,
): [number, number] {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const v = x[xo + i]!;
    if (v < min) min = v;
    if (v > max) max = v;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * v));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    return [0, -min];
  }
  const err = (diff: number) => (useMad ? Math.abs(diff) : fr(diff * diff));
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]!);
    bestError = fr(bestError + fr(w[i]! * err(diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best fit so far (updated below), as in ggml, not the minimum of x
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
      laux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * x[xo + i]!));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * laux[i]!) + thisMin) - x[xo + i]!);
        curError = fr(curError + fr(w[i]! * err(diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/**
 * Pack 2-bit levels as Q2_K / Q3_K store them: in each 128-value half, byte l of the 32 holds
 * levels l, l+32, l+64, l+96 in bits 0-1, 2-3, 4-5, 6-7.
 */
export function pack2Bit(L: Uint8Array, dst: Uint8Array, q: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      dst[q + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

/**
 * The first loop of quantize_row_q4_K_ref / _q5_K_ref: per 32-value sub-block of the block at
 * src[xo..], weights w = rms + |x| and makeQkx2Quants (levels 0..nmax into L) give a scale and a
 * min, stored in scales / mins; returns their maxima.
 */
export function subBlockScalesMins(
  src: Float32Array,
  xo: number,
  nmax: number,
  rmin: number,
  nstep: number,
  w: Float32Array,
  L: Uint8Array,
  laux: Uint8Array,
  scales: Float32Array,
  mins: Float32Array,
): [number, number] {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(src[xo + 32 * j + l]! * src[xo + 32 * j + l]!));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = avX + Math.abs(src[xo + 32 * j + l]!);
    const [s, m] = makeQkx2Quants(32, nmax, src, xo + 32 * j, w, L, 32 * j, laux, rmin, fr(0.1), nstep);
    scales[j] = s;
    mins[j] = m;
    if (scales[j]! > maxScale) maxScale = scales[j]!; // the stored (binary32) values, as C compares them
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  return [maxScale, maxMin];
}
