// block_q3_K (ggml-common.h), 256 values in 16 sub-blocks of 16, 110 bytes:
//   32 bytes hmask (third bit), 64 bytes of 2-bit levels (laid out as in Q2_K), 12 bytes of
//   sixteen 6-bit signed scales, f16 d. y = (d*(sc_s - 32)) * (q - (high bit set ? 0 : 4)).
//   The high bit of value v of a 128-value half h, run j (of 4), lies in hmask[v % 32],
//   bit 4h + j (dequantize_row_q3_K).
import { f16At, putF16, signedAbsMax } from './block.js';
import { QK_K, nearestInt, pack2Bit } from './kblock.js';

const fr = Math.fround;
const GROUP_MAX_EPS = fr(1e-15);

export const BLOCK_Q3_K_BYTES = 110;

/**
 * Scale j (0..15) of the 12 bytes at s: its low 4 bits are the low (j < 8) or high nibble of
 * byte j % 8, its top 2 bits are bits 2*(j/4).. of byte 8 + j % 4; stored with a +32 bias.
 */
export function scaleQ3K(b: Uint8Array, s: number, j: number): number {
  const lo = j < 8 ? b[s + j]! & 0xf : b[s + j - 8]! >>> 4;
  return (lo | (((b[s + 8 + (j & 3)]! >>> (2 * (j >> 2))) & 3) << 4)) - 32;
}

export function dequantizeQ3_K(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_Q3_K_BYTES) {
    const d = f16At(src, p + 108);
    for (let half = 0; half < 2; half++) {
      const q = p + 32 + 32 * half;
      for (let j = 0; j < 4; j++, o += 32) {
        const shift = 2 * j,
          m = 1 << (4 * half + j);
        for (let k = 0; k < 2; k++) {
          // d*(sc - 32) and its product with a level in -4..3 are exact in binary32
          const dl = d * scaleQ3K(src, p + 96, 8 * half + 2 * j + k);
          for (let l = 0; l < 16; l++) {
            const i = 16 * k + l;
            dst[o + i] = dl * (((src[q + i]! >>> shift) & 3) - (src[p + i]! & m ? 0 : 4));
          }
        }
      }
    }
  }
}

/**
 * make_q3_quants with do_rmse: symmetric levels in [-nmax, nmax-1] for x[xo..xo+n), weights x^2,
 * then up to 5 passes moving single levels while that improves the fit. Writes L = level + nmax
 * (or 0 for an all-zero group) and returns the scale.
 */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  const max = signedAbsMax(x, xo, n); // the first value of the largest magnitude
  if (Math.abs(max) < GROUP_MAX_EPS) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  const clamp = (v: number) => Math.max(-nmax, Math.min(nmax - 1, v));
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const v = x[xo + i]!;
    const l = clamp(nearestInt(fr(iscale * v)));
    L[lo + i] = l;
    const w = fr(v * v);
    sumlx = fr(sumlx + fr(fr(w * v) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const v = x[xo + i]!;
      const w = fr(v * v);
      const li = L[lo + i]!;
      let slx = fr(sumlx - fr(fr(w * v) * li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * li) * li));
        const nl = clamp(nearestInt(fr(fr(v * sl2) / slx)));
        if (nl !== li) {
          slx = fr(slx + fr(fr(w * v) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[lo + i]! += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/** quantize_row_q3_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ3_K(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Int8Array(QK_K);
  const Lu = new Uint8Array(L.buffer);
  const scales = new Float32Array(16);
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * QK_K;
    const p = dstOffset + b * BLOCK_Q3_K_BYTES;
    let maxScale = 0;
    let amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(16, 4, src, xo + 16 * j, L, 16 * j);
      const s = Math.abs(scales[j]!);
      if (s > amax) {
        amax = s;
        maxScale = scales[j]!;
      }
    }
    const sc = p + 96;
    dst.fill(0, sc, sc + 12);
    if (maxScale) {
      const iscale = fr(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        // int8_t l = nearest_int(...): the low 8 bits, as a signed byte
        let l = Math.max(-32, Math.min(31, (nearestInt(fr(iscale * scales[j]!)) << 24) >> 24)) + 32;
        if (j < 8) dst[sc + j] = l & 0xf;
        else dst[sc + j - 8] |= (l & 0xf) << 4;
        l >>= 4;
        dst[sc + 8 + (j % 4)] |= l << (2 * (j >> 2));
      }
      putF16(dst, p + 108, fr(1 / iscale));
    } else {
      putF16(dst, p + 108, 0);
    }
    const d = f16At(dst, p + 108);
    for (let j = 0; j < 16; j++) {
      const dj = d * scaleQ3K(dst, sc, j);
      if (!dj) continue; // keeps the levels from makeQ3Quants, as ggml does
      for (let i = 0; i < 16; i++) {
        L[16 * j + i] = Math.max(-4, Math.min(3, nearestInt(fr(src[xo + 16 * j + i]! / dj)))) + 4;
      }
    }
    // the third bit of value j goes to hmask[j % 32], bit j / 32
    dst.fill(0, p, p + 32);
    for (let j = 0; j < QK_K; j++) {
      if (L[j]! > 3) {
        dst[p + (j & 31)] |= 1 << (j >> 5);
        L[j]! -= 4;
      }
    }
    pack2Bit(Lu, dst, p + 32);
  }
}
