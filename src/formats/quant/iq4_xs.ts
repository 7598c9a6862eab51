// block_iq4_xs (ggml-common.h), 256 values in 8 blocks of 32, 136 bytes: f16 d, u16 scales_h
// (2 high bits of each block's scale), 4 bytes scales_l (low nibbles), 128 bytes of IQ4_NL-style
// nibbles (each 16-byte run: block values j / j+16 in its low / high nibbles).
// y = (d * (ls - 32)) * kvalues_iq4nl[q] (dequantize_row_iq4_xs).
import { f16At } from './block.js';
import { KVALUES_IQ4NL, quantizeIq4Impl } from './iq4_nl.js';

export const BLOCK_IQ4_XS_BYTES = 136;

export function dequantizeIQ4_XS(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, nBlocks: number): void {
  const kv = KVALUES_IQ4NL;
  for (let b = 0, p = srcOffset, o = dstOffset; b < nBlocks; b++, p += BLOCK_IQ4_XS_BYTES) {
    const d = f16At(src, p);
    const sh = src[p + 2]! | (src[p + 3]! << 8);
    for (let ib = 0; ib < 8; ib++, o += 32) {
      const ls = ((src[p + 4 + (ib >> 1)]! >>> (4 * (ib & 1))) & 0xf) | (((sh >>> (2 * ib)) & 3) << 4);
      // d*(ls-32)*kvalue needs at most 11 + 6 + 7 significant bits: exact in binary32
      const dl = d * (ls - 32);
      const q = p + 8 + 16 * ib;
      for (let j = 0; j < 16; j++) {
        dst[o + j] = dl * kv[src[q + j]! & 0xf]!;
        dst[o + j + 16] = dl * kv[src[q + j]! >>> 4]!;
      }
    }
  }
}

/** quantize_iq4_xs without an importance matrix (= quantize_row_iq4_xs_ref), what llama-quantize writes. */
export function quantizeIQ4_XS(src: Float32Array, srcOffset: number, dst: Uint8Array, dstOffset: number, nBlocks: number): void {
  const L = new Uint8Array(256),
    scales = new Float32Array(8),
    weight = new Float32Array(32);
  for (let b = 0; b < nBlocks; b++) {
    const p = dstOffset + b * BLOCK_IQ4_XS_BYTES;
    quantizeIq4Impl(256, src, srcOffset + 256 * b, dst, p, p + 8, 7, L, scales, weight);
  }
}
