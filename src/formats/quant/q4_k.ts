// block_q4_K (ggml-common.h), 256 values in 8 sub-blocks of 32, 144 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs, 128 bytes of nibbles.
// Sub-block j: y = d*sc_j*q - dmin*m_j. Each 32-byte group of qs holds sub-block 2g in its
// low nibbles and sub-block 2g+1 in its high nibbles (dequantize_row_q4_K).
import { f16Table, f16ToF32, f32ToF16 } from './half.js';

const fr = Math.fround;

export const QK_K = 256;
export const BLOCK_Q4_K_BYTES = 144;

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

export function dequantizeQ4_K(
  src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number,
): void {
  const t = f16Table();
  const sm = [0, 0];
  let p = srcOffset;
  let o = dstOffset;
  for (let b = 0; b < nBlocks; b++) {
    const d = t[src[p]! | (src[p + 1]! << 8)]!;
    const dmin = t[src[p + 2]! | (src[p + 3]! << 8)]!;
    const sc = p + 4;
    let q = p + 16;
    for (let g = 0; g < 4; g++) {
      scaleMinK4(2 * g, src, sc, sm);
      const d1 = d * sm[0]!; // exact in binary32: 11-bit d times a 6-bit scale
      const m1 = dmin * sm[1]!;
      scaleMinK4(2 * g + 1, src, sc, sm);
      const d2 = d * sm[0]!;
      const m2 = dmin * sm[1]!;
      for (let l = 0; l < 32; l++) dst[o + l] = fr(d1 * (src[q + l]! & 0x0f) - m1);
      for (let l = 0; l < 32; l++) dst[o + 32 + l] = fr(d2 * (src[q + l]! >>> 4) - m2);
      q += 32;
      o += 64;
    }
    p += BLOCK_Q4_K_BYTES;
  }
}


/** ggml's nearest_int: round half to even through the 1.5*2^23 trick (valid for |x| < 2^22). */
export function nearestInt(x: number): number {
  return fr(x + 12582912) - 12582912;
}

/**
 * make_qkx2_quants: fit x ~ scale*L - theMin with L in [0, nmax] and weights w, trying
 * nstep+1 candidate scales. Fills L[lo..lo+n) and returns [scale, theMin].
 */
function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, w: Float32Array, L: Uint8Array, lo: number,
  laux: Uint8Array, rmin: number, rdelta: number, nstep: number,
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
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(x[xo + i]! - min)))));
    L[lo + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - x[xo + i]!);
    bestError = fr(bestError + fr(w[i]! * fr(diff * diff)));
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
        curError = fr(curError + fr(w[i]! * fr(diff * diff)));
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

/** quantize_row_q4_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ4_K(
  src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number,
): void {
  const L = new Uint8Array(QK_K);
  const laux = new Uint8Array(32);
  const w = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const sm = [0, 0];
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * QK_K;
    const p = dstOffset + b * BLOCK_Q4_K_BYTES;
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 8; j++) {
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(src[xo + 32 * j + l]! * src[xo + 32 * j + l]!));
      const avX = fr(Math.sqrt(fr(sumX2 / 32)));
      for (let l = 0; l < 32; l++) w[l] = avX + Math.abs(src[xo + 32 * j + l]!);
      const [s, m] = makeQkx2Quants(32, 15, src, xo + 32 * j, w, L, 32 * j, laux, -1, fr(0.1), 20);
      scales[j] = s;
      mins[j] = m;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
    const sc = p + 4;
    dst.fill(0, sc, sc + 12);
    for (let j = 0; j < 8; j++) {
      // uint8_t ls = nearest_int(...): the C conversion keeps the low 8 bits
      const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
      const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
      if (j < 4) {
        dst[sc + j] = ls;
        dst[sc + j + 4] = lm;
      } else {
        dst[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        dst[sc + j - 4] |= (ls >> 4) << 6;
        dst[sc + j] |= (lm >> 4) << 6;
      }
    }
    const dh = f32ToF16(fr(maxScale / 63));
    const mh = f32ToF16(fr(maxMin / 63));
    dst[p] = dh & 0xff;
    dst[p + 1] = dh >>> 8;
    dst[p + 2] = mh & 0xff;
    dst[p + 3] = mh >>> 8;
    const d = f16ToF32(dh);
    const dmin = f16ToF32(mh);
    for (let j = 0; j < 8; j++) {
      scaleMinK4(j, dst, sc, sm);
      const dj = d * sm[0]!;
      if (!dj) continue; // keeps the levels chosen by makeQkx2Quants, as ggml does
      const dm = dmin * sm[1]!;
      for (let i = 0; i < 32; i++) {
        const l = nearestInt(fr(fr(src[xo + 32 * j + i]! + dm) / dj));
        L[32 * j + i] = Math.max(0, Math.min(15, l));
      }
    }
    for (let g = 0; g < 4; g++) {
      for (let l = 0; l < 32; l++) dst[p + 16 + 32 * g + l] = L[64 * g + l]! | (L[64 * g + l + 32]! << 4);
    }
  }
}
