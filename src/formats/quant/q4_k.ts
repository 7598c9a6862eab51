// block_q4_K (ggml-common.h), 256 values in 8 sub-blocks of 32, 144 bytes:
//   f16 d, f16 dmin, 12 bytes of packed 6-bit (scale, min) pairs, 128 bytes of nibbles.
// Sub-block j: y = d*sc_j*q - dmin*m_j. Each 32-byte group of qs holds sub-block 2g in its
// low nibbles and sub-block 2g+1 in its high nibbles (dequantize_row_q4_K).
import { f16Table, f16ToF32, f32ToF16 } from './half.js';
import { subBlockScalesMins, nearestInt, scaleMinK4 } from './kblock.js';

export { QK_K, nearestInt, scaleMinK4 } from './kblock.js';

const fr = Math.fround;
export const BLOCK_Q4_K_BYTES = 144;

export function dequantizeQ4_K(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
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

/** quantize_row_q4_K_ref, every float operation rounded to binary32 as C (without FMA) does. */
export function quantizeQ4_K(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Uint8Array(256);
  const laux = new Uint8Array(32);
  const w = new Float32Array(32);
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const sm = [0, 0];
  for (let b = 0; b < nBlocks; b++) {
    const xo = srcOffset + b * 256;
    const p = dstOffset + b * BLOCK_Q4_K_BYTES;
    const [maxScale, maxMin] = subBlockScalesMins(src, xo, 15, -1, 20, w, L, laux, scales, mins);
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
